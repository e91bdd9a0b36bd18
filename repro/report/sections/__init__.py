"""The report's parts, one module each. A section's `render(ctx)` (part.Section) returns a part.Part: the files it
writes, the sections it adds to the report's text and the generated blocks it refreshes in the committed study's
documents. repro.report.build runs them in the order order.report_sections gives over one context.Context (the
configurations sorted into kinds once: kinds.classify), then writes the report's text (report_text) and the
documents (documents)."""
