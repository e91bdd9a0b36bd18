"""The study as a page to open in a browser: draw a digit, or pick a real test digit, and watch every rung's
seed-0 net read it (its forward pass in the page's JavaScript, from the committed weights), with its H1 and H2
maps, its kernels, the test digits it gets wrong and the ladder's spread between seeds. `build.py` writes
it; `nets.py` says which nets it carries (and `repro predict` asks); `template.html`, `page.css` and `page.js`
are the page itself."""
