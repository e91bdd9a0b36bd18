// The page's code: the 1989 net's forward pass (repro/net/model.py, in float64 from float32 weights, its
// outputs rounded to float32 as the study's), the drawing pad's preparation (repro/predict.py, step for step),
// and the views. No library, no network: the data comes from data.js and data-*.js, loaded before this file as
// classic scripts.
"use strict";

const DATA = window.PAGE_DATA;
const SCALED_TANH_A = 1.7159, SCALED_TANH_S = 2 / 3; // repro/net/activations.py

// ------------------------------------------------------------------ data
function floats(b64) { // base64 of little-endian float32 -> Float32Array
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

const SHAPES = { // parameter sizes, in data.js's order (repro/page/build.py PARAMS)
  net1989: [["H1w", 12 * 25], ["H1b", 12 * 64], ["H2w", 12 * 8 * 25], ["H2b", 12 * 16], ["H3w", 30 * 192],
    ["H3b", 30], ["outw", 10 * 30], ["outb", 10]],
  fc40: [["Hw", 40 * 256], ["Hb", 40], ["outw", 10 * 40], ["outb", 10]],
};

const NETS = DATA.nets.map((n) => {
  const all = floats(DATA.blobs[n.params]), p = {};
  let at = 0;
  for (const [name, size] of SHAPES[n.architecture]) { p[name] = all.subarray(at, at + size); at += size; }
  return Object.assign({}, n, { p });
});

const DIGITS = {};
for (const [ds, d] of Object.entries(DATA.digits)) {
  DIGITS[ds] = Object.assign({}, d, { x: floats(DATA.blobs[d.pixels]) });
}
function digitPixels(ds, k) { return Float64Array.from(DIGITS[ds].x.subarray(k * 256, (k + 1) * 256)); }

// ------------------------------------------------------------------ the net
const ACT = {
  tanh: Math.tanh,
  scaled_tanh: (a) => SCALED_TANH_A * Math.tanh(SCALED_TANH_S * a),
  relu: (a) => (a > 0 ? a : 0),
};

function dense(w, b, x, nOut) { // out[o] = b[o] + sum_i w[o, i] x[i]
  const nIn = x.length, out = new Float64Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let s = b[o];
    for (let i = 0; i < nIn; i++) s += w[o * nIn + i] * x[i];
    out[o] = s;
  }
  return out;
}

function padded(x, size) { // size x size map -> (size+4)^2, background -1 around (model.py pad_background)
  const n = size + 4, out = new Float64Array(n * n).fill(-1);
  for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) out[(r + 2) * n + c + 2] = x[r * size + c];
  return out;
}

// One 5x5 kernel at stride 2 over a padded map of width n, added into acc (outSize x outSize).
function conv5(acc, map, n, w, outSize) {
  for (let i = 0; i < outSize; i++) for (let j = 0; j < outSize; j++) {
    let s = 0;
    for (let ky = 0; ky < 5; ky++) for (let kx = 0; kx < 5; kx++) s += w[ky * 5 + kx] * map[(2 * i + ky) * n + 2 * j + kx];
    acc[i * outSize + j] += s;
  }
}

// The output values, rounded to float32 as the study's nets emit them: saturated outputs are exactly 1.0 and tie.
function outputsOf(net, pre) {
  if (net.output === "softmax") {
    const m = Math.max(...pre), e = pre.map((v) => Math.exp(v - m)), z = e.reduce((a, b) => a + b, 0);
    return e.map((v) => Math.fround(v / z));
  }
  return pre.map((v) => Math.fround(ACT[net.output](v)));
}

// x: Float64Array(256) -> {out: the ten output values, h1: 12 maps 8x8, h2: 12 maps 4x4 (null for fc40)}
function forward(net, x) {
  const act = ACT[net.hidden], p = net.p;
  if (net.architecture === "fc40") {
    const h = dense(p.Hw, p.Hb, x, 40).map(act);
    return { out: outputsOf(net, dense(p.outw, p.outb, h, 10)), h1: null, h2: null };
  }
  const x0 = padded(x, 16);
  const h1 = [], h1pad = [];
  for (let m = 0; m < 12; m++) {
    const a = Float64Array.from(p.H1b.subarray(m * 64, (m + 1) * 64));
    conv5(a, x0, 20, p.H1w.subarray(m * 25, (m + 1) * 25), 8);
    h1.push(a.map(act));
    h1pad.push(padded(h1[m], 8));
  }
  const h2 = [], x2 = new Float64Array(192);
  for (let m = 0; m < 12; m++) {
    const a = Float64Array.from(p.H2b.subarray(m * 16, (m + 1) * 16));
    net.h2[m].forEach((src, s) => conv5(a, h1pad[src], 12, p.H2w.subarray((m * 8 + s) * 25, (m * 8 + s + 1) * 25), 4));
    h2.push(a.map(act));
    x2.set(h2[m], m * 16); // map-major, as model.py flattens H2
  }
  const h3 = dense(p.H3w, p.H3b, x2, 30).map(act);
  return { out: outputsOf(net, dense(p.outw, p.outb, h3, 10)), h1, h2 };
}

// The study's rule (repro/net/metrics.py): the answer is the output strictly on top; a tie is no answer.
function answerOf(out) {
  const top = Math.max(...out), winners = [...out.keys()].filter((k) => out[k] === top);
  return winners.length === 1 ? winners[0] : -1;
}
function gapOf(out) { const s = Array.from(out).sort((a, b) => b - a); return s[0] - s[1]; }

// The 1%-error rejection threshold: the output gap of the last test digit that rejection still accepts.
function thresholdOf(net) {
  if (net.threshold_digit === null) return Infinity;
  const d = DIGITS[net.dataset], k = d.index.indexOf(net.threshold_digit);
  return gapOf(forward(net, digitPixels(net.dataset, k)).out);
}

// ------------------------------------------------------------------ the pad's preparation (repro/predict.py)
const INK_LEVEL = 64, MNIST_BOX = 20, MNIST_FIELD = 28;
const round = (v) => Math.floor(v + 0.5);

function grayOf(rgba, n) { // Pillow's "L": ITU-R 601-2 luma in 16-bit fixed point
  const g = new Float64Array(n);
  for (let i = 0; i < n; i++) g[i] = (rgba[4 * i] * 19595 + rgba[4 * i + 1] * 38470 + rgba[4 * i + 2] * 7471 + 0x8000) >> 16;
  return g;
}

function inkOf(gray, h, w) { // ink bright, paper 0, stretched to 0-255; null when there is no ink
  const border = [];
  for (let c = 0; c < w; c++) border.push(gray[c]);
  for (let c = 0; c < w; c++) border.push(gray[(h - 1) * w + c]);
  for (let r = 1; r < h - 1; r++) border.push(gray[r * w]);
  for (let r = 1; r < h - 1; r++) border.push(gray[r * w + w - 1]);
  let sum = 0;
  for (const v of border) sum += v;
  const light = sum / border.length > 127.5;
  const inkB = border.map((v) => (light ? 255 - v : v)).sort((a, b) => a - b);
  const level = inkB[Math.floor(inkB.length / 2)];
  const ink = gray.map((v) => (light ? 255 - v : v));
  const peak = Math.max(...ink);
  if (peak - level < 32) return null;
  const scale = 255 / (peak - level);
  return ink.map((v) => Math.max(v - level, 0) * scale);
}

function areaResize1d(src, n, m, stride, count, along) { // along rows (stride=width) or columns
  // src: n lines of `count` values; output: m lines. Same order of sums as predict.py's area_resize_1d.
  const out = new Float64Array(m * count), scale = n / m;
  for (let i = 0; i < m; i++) {
    const lo = (i * n) / m, hi = ((i + 1) * n) / m;
    for (let j = 0; j < count; j++) {
      let acc = 0;
      for (let k = Math.floor(lo); k < Math.ceil(hi); k++) acc = acc + (Math.min(hi, k + 1) - Math.max(lo, k)) * along(src, k, j);
      out[i * count + j] = acc / scale;
    }
  }
  return out;
}

function areaResize(img, h, w, oh, ow) { // (h, w) row-major -> (oh, ow)
  const rows = areaResize1d(img, h, oh, w, w, (s, k, j) => s[k * w + j]); // (oh, w)
  const cols = areaResize1d(rows, w, ow, oh, oh, (s, k, j) => s[j * w + k]); // (ow, oh), transposed
  const out = new Float64Array(oh * ow);
  for (let r = 0; r < oh; r++) for (let c = 0; c < ow; c++) out[r * ow + c] = cols[c * oh + r];
  return out;
}

function inkBox(ink, h, w, longer) { // bounding box of ink > INK_LEVEL, longer side scaled to `longer`
  let r0 = h, r1 = -1, c0 = w, c1 = -1;
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) if (ink[r * w + c] > INK_LEVEL) {
    r0 = Math.min(r0, r); r1 = Math.max(r1, r); c0 = Math.min(c0, c); c1 = Math.max(c1, c);
  }
  const bh = r1 - r0 + 1, bw = c1 - c0 + 1, crop = new Float64Array(bh * bw);
  for (let r = 0; r < bh; r++) for (let c = 0; c < bw; c++) crop[r * bw + c] = ink[(r0 + r) * w + c0 + c];
  const side = Math.max(bh, bw);
  const oh = Math.max(1, round((bh * longer) / side)), ow = Math.max(1, round((bw * longer) / side));
  return { img: areaResize(crop, bh, bw, oh, ow), h: oh, w: ow };
}

function prepareUsps(ink, h, w) {
  const box = inkBox(ink, h, w, 16), x = new Float64Array(256);
  const top = Math.floor((16 - box.h) / 2), left = Math.floor((16 - box.w) / 2);
  for (let r = 0; r < box.h; r++) for (let c = 0; c < box.w; c++) x[(top + r) * 16 + left + c] = box.img[r * box.w + c];
  return x.map((v) => Math.fround(v / 127.5 - 1));
}

function prepareMnist16(ink, h, w) {
  const box = inkBox(ink, h, w, MNIST_BOX);
  let total = 0, sy = 0, sx = 0;
  for (let r = 0; r < box.h; r++) for (let c = 0; c < box.w; c++) {
    const v = box.img[r * box.w + c];
    total += v; sy += r * v; sx += c * v;
  }
  const centre = (MNIST_FIELD - 1) / 2;
  const top = Math.min(Math.max(round(centre - sy / total), 0), MNIST_FIELD - box.h);
  const left = Math.min(Math.max(round(centre - sx / total), 0), MNIST_FIELD - box.w);
  const field = new Float64Array(MNIST_FIELD * MNIST_FIELD);
  for (let r = 0; r < box.h; r++) for (let c = 0; c < box.w; c++) {
    field[(top + r) * MNIST_FIELD + left + c] = Math.floor(Math.min(Math.max(box.img[r * box.w + c], 0), 255) + 0.5);
  }
  return mnistResize(field);
}

// repro/data/mnist16.py mnist_resize: bytes / 127.5 - 1, then bilinear 28 -> 16 (align_corners=False).
function mnistResize(bytes) {
  const n = MNIST_FIELD, x = bytes.map((v) => Math.fround(Math.fround(v / 127.5) - 1)), out = new Float64Array(256);
  const taps = (d) => {
    const src = Math.max((d + 0.5) * (n / 16) - 0.5, 0), i0 = Math.floor(src), l1 = src - i0;
    return [i0, Math.min(i0 + 1, n - 1), 1 - l1, l1];
  };
  for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) {
    const [y0, y1, wy0, wy1] = taps(r), [x0, x1, wx0, wx1] = taps(c);
    const top = wx0 * x[y0 * n + x0] + wx1 * x[y0 * n + x1], bottom = wx0 * x[y1 * n + x0] + wx1 * x[y1 * n + x1];
    out[r * 16 + c] = Math.fround(wy0 * top + wy1 * bottom);
  }
  return out;
}

function prepareCanvas(canvas, dataset) { // the pad -> Float64Array(256) input, or null without ink
  const { width: w, height: h } = canvas;
  const ink = inkOf(grayOf(canvas.getContext("2d").getImageData(0, 0, w, h).data, w * h), h, w);
  if (ink === null) return null;
  return dataset === "usps" ? prepareUsps(ink, h, w) : prepareMnist16(ink, h, w);
}

// ------------------------------------------------------------------ views
const $ = (id) => document.getElementById(id);
const state = { dataset: "usps", net: null, input: null, source: "" };

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function paint(canvas, values, size, lo, hi) { // values in [lo, hi] -> gray (lo black ... hi white)
  canvas.width = size; canvas.height = size;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    const g = Math.round(255 * Math.min(Math.max((values[i] - lo) / (hi - lo), 0), 1));
    img.data.set([g, g, g, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}
function paintDigit(canvas, x) { paint(canvas, x.map((v) => -v), 16, -1, 1); } // ink dark, as on paper

function netsOf(ds) { return NETS.filter((n) => n.dataset === ds); }
const answerText = (a) => (a < 0 ? "tie" : String(a));

function showNet() {
  const net = state.net;
  $("rung-title").textContent = `${net.title} (${net.part === "faithful" ? "faithfulness study" : "ladder"}, seed 0)`;
  showOutputs();
  showWrong();
  showChart();
}

function showOutputs() {
  const net = state.net, bars = $("bars"), maps = $("maps");
  bars.replaceChildren(); maps.replaceChildren();
  showAll();
  if (state.input === null) { $("verdict").textContent = "Draw a digit, or load a test digit."; return; }
  const f = forward(net, state.input), a = answerOf(f.out), lo = net.output === "softmax" ? 0 : -1.8;
  f.out.forEach((v, k) => {
    const row = el("div", { class: "bar" + (k === a ? " top" : "") });
    row.append(el("span", { class: "k" }, String(k)));
    const fill = el("div", { class: "fill" });
    fill.style.width = `${Math.max(1, (150 * (v - lo)) / (1.8 - lo))}px`;
    row.append(fill, el("span", { class: "v" }, v.toFixed(4)));
    bars.append(row);
  });
  const gap = gapOf(f.out), threshold = thresholdOf(net);
  $("verdict").textContent = (a < 0 ? "The top outputs tie: no answer (counted wrong)." : `Answer: ${a}.`)
    + (gap < threshold ? ` Rejected at the 1%-error threshold (gap ${gap.toFixed(3)} < ${threshold.toFixed(3)}).`
      : ` Accepted at the 1%-error threshold (gap ${gap.toFixed(3)} \u2265 ${threshold.toFixed(3)}).`);
  if (f.h1 === null) { maps.append(el("p", {}, "fc40 is fully connected: it has no feature maps or kernels.")); return; }
  const rows = [["H1 (8x8)", f.h1, 8], ["H2 (4x4)", f.h2, 4]];
  const lo2 = net.hidden === "relu" ? 0 : -1.72;
  for (const [name, list, size] of rows) {
    const row = el("div", { class: "maps" });
    row.append(el("span", {}, name));
    for (const m of list) {
      const c = el("canvas", { class: "pixels" });
      const hi = net.hidden === "relu" ? Math.max(1e-9, ...list.map((q) => Math.max(...q))) : 1.72;
      paint(c, m, size, lo2, hi);
      row.append(c);
    }
    maps.append(row);
  }
  const krow = el("div", { class: "maps" }), w = net.p.H1w;
  krow.append(el("span", {}, "H1 kernels (5x5)"));
  const lim = Math.max(...Array.from(w, Math.abs));
  for (let m = 0; m < 12; m++) {
    const c = el("canvas", { class: "pixels" });
    paint(c, w.subarray(m * 25, (m + 1) * 25), 5, -lim, lim);
    krow.append(c);
  }
  maps.append(krow);
}

function showAll() { // every net of the dataset on the current input
  const table = $("all");
  table.replaceChildren();
  const head = el("tr");
  head.append(el("th", {}, "rung"), el("th", {}, "answer"), el("th", {}, "gap"));
  table.append(head);
  for (const net of netsOf(state.dataset)) {
    const tr = el("tr", { class: net === state.net ? "chosen" : "" });
    tr.append(el("td", {}, net.label + (net.part === "faithful" ? " (faithful)" : "")));
    if (state.input === null) tr.append(el("td", {}, "-"), el("td", {}, "-"));
    else {
      const out = forward(net, state.input).out;
      tr.append(el("td", {}, answerText(answerOf(out))), el("td", {}, gapOf(out).toFixed(3)));
    }
    tr.onclick = () => { state.net = net; $("rung").value = NETS.indexOf(net); showNet(); };
    table.append(tr);
  }
}

function showWrong() {
  const net = state.net, d = DIGITS[net.dataset], box = $("wrong");
  box.replaceChildren();
  if (net.wrong === null) {
    $("wrong-note").textContent = `This net collapsed: it gets ${net.n_wrong} of the test digits wrong; they are not listed.`;
    return;
  }
  $("wrong-note").textContent = `${net.n_wrong} test digits; under each, its label and this `
    + "net's answer; hover for every other net's answer, click to load it.";
  const others = netsOf(net.dataset), self = others.indexOf(net);
  for (const t of net.wrong) {
    const k = d.index.indexOf(t), answers = d.answers[k];
    const said = others.map((n, j) => `${n.label} ${answerText(answers[j])}`).join(", ");
    const fig = el("figure", { title: `test digit ${t}, label ${d.labels[k]}: ${said}` });
    const c = el("canvas", { class: "pixels" });
    paintDigit(c, digitPixels(net.dataset, k));
    fig.append(c, el("figcaption", {}, `${d.labels[k]}\u2192${answerText(answers[self])}`));
    fig.onclick = () => loadDigit(net.dataset, k);
    box.append(fig);
  }
}

function showChart() { // one point per seed, rungs along x, log test error along y
  const ds = state.dataset, runs = DATA.runs.filter((r) => r.dataset === ds), W = 80 * runs.length + 70, H = 260;
  const all = runs.flatMap((r) => r.seeds.map((s) => s[1])).filter((v) => v > 0);
  if (all.length === 0) { $("chart").textContent = "No run with a test error above 0 to draw."; return; }
  const lo = Math.log10(Math.min(...all) * 0.8), hi = Math.log10(Math.max(...all) * 1.25);
  const y = (v) => 20 + (H - 60) * (1 - (Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo));
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">`;
  for (const tick of [0.5, 1, 2, 5, 10, 20, 50, 100]) {
    if (Math.log10(tick / 100) < lo || Math.log10(tick / 100) > hi) continue;
    const ty = y(tick / 100);
    svg += `<line x1="50" x2="${W}" y1="${ty}" y2="${ty}" stroke="#ddd"/>`
      + `<text x="45" y="${ty + 4}" text-anchor="end">${tick}%</text>`;
  }
  runs.forEach((r, i) => {
    const cx = 90 + 80 * i;
    svg += `<text x="${cx}" y="${H - 22}" text-anchor="middle">${r.label}</text>`;
    if (r.part === "faithful") svg += `<text x="${cx}" y="${H - 8}" text-anchor="middle">(faithful)</text>`;
    for (const [seed, test, train, collapsed] of r.seeds) {
      const x = cx + ((seed % 8) - 3.5) * 5 + (seed >= 8 ? 2 : 0);
      const tip = `${r.label}, seed ${seed}: test ${(100 * test).toFixed(2)}%, train ${(100 * train).toFixed(2)}%, `
        + (collapsed ? "collapsed" : "not collapsed");
      const fill = collapsed ? "none" : "#4a78b0", stroke = collapsed ? "#c0392b" : "#2c4a70";
      svg += `<circle cx="${x}" cy="${y(test)}" r="3.5" fill="${fill}" stroke="${stroke}"><title>${tip}</title></circle>`;
    }
  });
  $("chart").innerHTML = svg + "</svg>";
}

// ------------------------------------------------------------------ input
function setInput(x, note) {
  state.input = x;
  paintDigit($("input"), x || new Float64Array(256).fill(-1));
  $("input-note").textContent = note;
  showOutputs();
}

function loadDigit(ds, k) {
  if (ds !== state.dataset) chooseDataset(ds);
  const d = DIGITS[ds];
  clearPad();
  setInput(digitPixels(ds, k), `${ds} test digit ${d.index[k]}, label ${d.labels[k]}`);
}

const pad = $("pad"), padCtx = pad.getContext("2d");
function clearPad() { padCtx.fillStyle = "#fff"; padCtx.fillRect(0, 0, pad.width, pad.height); }
function padChanged() {
  const x = prepareCanvas(pad, state.dataset);
  setInput(x, x === null ? "no ink yet" : `drawn, prepared as ${state.dataset} digits`);
}
let drawing = null;
function padPoint(e) { // CSS pixels -> the pad's own pixels
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
}
pad.addEventListener("pointerdown", (e) => {
  if (state.source !== "pad") { clearPad(); state.source = "pad"; }
  drawing = padPoint(e); pad.setPointerCapture(e.pointerId);
  padCtx.beginPath(); padCtx.arc(drawing[0], drawing[1], 7, 0, 2 * Math.PI); padCtx.fillStyle = "#000"; padCtx.fill();
});
pad.addEventListener("pointermove", (e) => {
  if (drawing === null) return;
  const p = padPoint(e);
  padCtx.strokeStyle = "#000"; padCtx.lineWidth = 14; padCtx.lineCap = "round";
  padCtx.beginPath(); padCtx.moveTo(...drawing); padCtx.lineTo(...p); padCtx.stroke();
  drawing = p;
});
const endStroke = () => { if (drawing !== null) { drawing = null; padChanged(); } };
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function chooseDataset(ds) {
  state.dataset = ds;
  $("dataset").value = ds;
  const sel = $("rung");
  const name = (n) => n.label + (n.part === "faithful" ? " (faithfulness study)" : "");
  sel.replaceChildren(...netsOf(ds).map((n) => el("option", { value: NETS.indexOf(n) }, name(n))));
  state.net = netsOf(ds)[0];
  if (state.source === "pad") padChanged();
  else if (state.input !== null && state.source !== ds) setInput(null, "");
  showNet();
}

const nextDigit = {};
for (const ds of Object.keys(DIGITS)) {
  nextDigit[ds] = 0;
  $(`next-${ds}`).onclick = () => {
    state.source = ds;
    loadDigit(ds, nextDigit[ds]);
    nextDigit[ds] = (nextDigit[ds] + 1) % DIGITS[ds].first;
  };
}
for (const ds of ["usps", "mnist16"]) if (!DIGITS[ds]) $(`next-${ds}`).remove();
$("clear").onclick = () => { clearPad(); state.source = "pad"; setInput(null, "no ink yet"); };
$("dataset").replaceChildren(...Object.keys(DIGITS).map((ds) => el("option", { value: ds }, ds)));
$("dataset").onchange = (e) => chooseDataset(e.target.value);
$("rung").onchange = (e) => { state.net = NETS[Number(e.target.value)]; showNet(); };
$("sources").textContent = "The digits: " + Object.values(DIGITS).map((d) => d.source).join(" ")
  + " The weights: seed 0 of each configuration of the study, as committed.";

clearPad();
chooseDataset(Object.keys(DIGITS)[0]);
window.lecunPage = { NETS, DIGITS, forward, answerOf, prepareCanvas, digitPixels, state, loadDigit };
