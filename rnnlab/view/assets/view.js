// rnnlab view: what every task's page shares -- asking the model, unpacking arrays, colour scales, heatmaps,
// line charts, captions. Vanilla JavaScript; user text is only ever set as text (textContent), never as HTML.
"use strict";

const RV = (() => {
  const bundleNode = document.getElementById("rnnlab-bundle");
  const bundle = bundleNode ? JSON.parse(bundleNode.textContent) : null;  // an exported page's answers
  const SVG = "http://www.w3.org/2000/svg";

  // ---- asking the model ----
  function key(route, params) {  // the answers' names, as rnnlab/view/answers.py's key() writes them
    const sorted = {};
    Object.keys(params).sort().forEach((k) => { sorted[k] = params[k]; });
    return route + JSON.stringify(sorted);
  }

  async function info() {
    if (bundle) return bundle.info;
    const response = await fetch("/api/info");
    if (!response.ok) throw new Error("the server did not answer (" + response.status + ")");
    return response.json();
  }

  async function ask(route, params) {
    if (bundle) {
      const found = bundle.answers[key(route, params)];
      if (found === undefined) {
        throw new Error("This exported page holds the answers for its own input only: run `rnnlab view --model " +
                        bundle.info.run + "` to ask about anything else.");
      }
      return found;
    }
    const response = await fetch("/api/" + route, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(params)});
    let answer;
    try { answer = await response.json(); } catch (err) { answer = {error: "the server sent no answer"}; }
    if (!response.ok) throw new Error(answer.error || ("the server refused (" + response.status + ")"));
    return answer;
  }

  // ---- arrays ----
  function unpack(p) {  // answers.packed: bytes over [lo, hi], row-major (rows x cols)
    const raw = atob(p.data);
    const values = new Float32Array(raw.length);
    const scale = (p.hi - p.lo) / 255;
    for (let i = 0; i < raw.length; i++) values[i] = p.lo + raw.charCodeAt(i) * scale;
    return {rows: p.rows, cols: p.cols, lo: p.lo, hi: p.hi, values,
            at(r, c) { return values[r * p.cols + c]; },
            column(c) { const out = new Float32Array(p.rows); for (let r = 0; r < p.rows; r++) out[r] = values[r * p.cols + c]; return out; }};
  }

  function exact(p) {  // answers.packed_exact: little-endian uint16 or float32, row-major
    const raw = atob(p.data), bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    const view = new DataView(bytes.buffer), wide = p.kind === "float32" ? 4 : 2;
    const values = new Float64Array(raw.length / wide);
    for (let i = 0; i < values.length; i++) values[i] = wide === 4 ? view.getFloat32(4 * i, true) : view.getUint16(2 * i, true);
    const cols = p.shape.length > 1 ? p.shape[1] : 1;
    return {shape: p.shape, values, at: (r, c) => values[r * cols + (c || 0)]};
  }

  // ---- colour ----
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];
  const BLUES = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  const blues = (t) => ramp(BLUES, t);  // a share 0..1: white to dark blue (counts, where little is light)
  function ramp(stops, t) {
    t = Math.min(1, Math.max(0, isFinite(t) ? t : 0.5)) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(t)), f = t - i;
    return stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  }
  function scale(lo, hi, diverging) {  // value -> [r, g, b]; diverging scales are symmetric about 0
    if (diverging) {
      const reach = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
      return {lo: -reach, hi: reach, diverging, color: (v) => ramp(DIVERGING, (v + reach) / (2 * reach))};
    }
    const span = hi - lo || 1;
    return {lo, hi, diverging, color: (v) => ramp(VIRIDIS, (v - lo) / span)};
  }
  function reach(values) {  // the 99th percentile of |v|: a diverging scale's end that a few outliers do not wash out
    const sorted = Float32Array.from(values, Math.abs).sort();
    return sorted.length ? (sorted[Math.floor(0.99 * (sorted.length - 1))] || sorted[sorted.length - 1] || 1) : 1;
  }
  const css = (rgb) => "rgb(" + rgb.join(",") + ")";
  const ink = (rgb) => (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140 ? "#111" : "#fff");
  const IN_UNIT_RANGE = ["i", "f", "o", "r", "z", "f'", "i'", "a", "beta", "decay", "forget_gate"];

  // ---- DOM ----
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value;
      else if (name === "style") node.style.cssText = value;  // through the CSSOM, which the page's CSP allows
      else if (name === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of [].concat(children || [])) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function svg(tag, attrs, children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value; else node.setAttribute(name, value);
    }
    for (const child of [].concat(children || [])) if (child) node.append(child);
    return node;
  }
  function card(title, caption, body) {
    return el("section", {class: "card"}, [el("h2", {text: title}), caption ? el("p", {class: "caption", text: caption}) : null]
      .concat(body || []));
  }
  function notice(message) {
    const node = document.getElementById("notice");
    node.textContent = message || "";
    node.hidden = !message;
  }
  const fmt = (v, digits) => (v === null || v === undefined || !isFinite(v) ? "–" : Number(v).toFixed(digits === undefined ? 3 : digits));
  const visible = (ch) => (ch === "\n" ? "⏎" : ch === " " ? "␣" : ch === "\t" ? "⇥" : ch);

  // ---- a heatmap: rows x columns of values on a canvas, with a colour bar ----
  // grid: {rows, cols, at(r, c)}; opts: {title, rowLabel, colLabel, colLabels, diverging, lo, hi, order, onPick, picked}
  function heatmap(grid, opts) {
    const order = opts.order || [...Array(grid.rows).keys()];
    const canvas = el("canvas", {class: "heat", width: grid.cols, height: order.length, "data-rows": order.length, "data-cols": grid.cols});
    const s = scale(opts.lo !== undefined ? opts.lo : grid.lo, opts.hi !== undefined ? opts.hi : grid.hi, opts.diverging);
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(grid.cols, order.length);
    order.forEach((r, y) => {
      for (let c = 0; c < grid.cols; c++) {
        const rgb = s.color(grid.at(r, c)), i = 4 * (y * grid.cols + c);
        image.data[i] = rgb[0]; image.data[i + 1] = rgb[1]; image.data[i + 2] = rgb[2]; image.data[i + 3] = 255;
      }
    });
    ctx.putImageData(image, 0, 0);
    canvas.style.height = Math.max(60, Math.min(420, order.length * 4)) + "px";
    const tip = el("div", {class: "tip", hidden: true});
    const where = (event) => {
      const box = canvas.getBoundingClientRect();
      const c = Math.floor((event.clientX - box.left) / box.width * grid.cols);
      const y = Math.floor((event.clientY - box.top) / box.height * order.length);
      return {c: Math.min(grid.cols - 1, Math.max(0, c)), r: order[Math.min(order.length - 1, Math.max(0, y))]};
    };
    canvas.addEventListener("mousemove", (event) => {
      const {r, c} = where(event);
      const label = opts.colLabels ? " " + JSON.stringify(opts.colLabels[c]) : "";
      tip.textContent = (opts.rowLabel || "row") + " " + r + ", " + (opts.colLabel || "step") + " " + c + label + ": " + fmt(grid.at(r, c));
      tip.hidden = false;
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    if (opts.onPick) canvas.addEventListener("click", (event) => opts.onPick(where(event).r, where(event).c));
    const axisY = el("div", {class: "axis-y", text: (opts.rowLabel || "rows") + " (" + order.length + ")" + (opts.orderNote ? " " + opts.orderNote : "")});
    const axisX = el("div", {class: "axis-x", text: (opts.colLabel || "steps") + " (" + grid.cols + ") →"});
    return el("figure", {class: "heatmap"}, [
      el("div", {class: "heat-row"}, [axisY, el("div", {class: "heat-box"}, [canvas, tip]), colorbar(s, opts.title)]),
      axisX]);
  }

  function colorbar(s, title) {
    const bar = el("canvas", {class: "colorbar", width: 1, height: 100});
    const ctx = bar.getContext("2d");
    for (let y = 0; y < 100; y++) { ctx.fillStyle = css(s.color(s.hi - (y / 99) * (s.hi - s.lo))); ctx.fillRect(0, y, 1, 1); }
    return el("div", {class: "legend"}, [el("span", {class: "legend-title", text: title || ""}),
      el("span", {text: fmt(s.hi, 2)}), bar, el("span", {text: fmt(s.lo, 2)})]);
  }

  // ---- a line chart in SVG: lines [{x[], y[], label, cls}], bands [{x[], lo[], hi[], cls, label}] ----
  function chart(opts) {
    const W = opts.width || 760, H = opts.height || 300, m = {l: 58, r: 16, t: 14, b: 38};
    const all = [];
    (opts.lines || []).forEach((l) => l.y.forEach((v, i) => { if (v !== null && isFinite(v)) all.push([l.x[i], v]); }));
    (opts.bands || []).forEach((b) => b.lo.forEach((v, i) => { if (isFinite(v) && isFinite(b.hi[i])) { all.push([b.x[i], v]); all.push([b.x[i], b.hi[i]]); } }));
    if (!all.length) return el("p", {class: "caption", text: "nothing to draw"});
    let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
    let [y0, y1] = opts.yRange || [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= 1; y1 += 1; }
    const pad = 0.05 * (y1 - y0); if (!opts.yRange) { y0 -= pad; y1 += pad; }
    const X = (x) => m.l + (x - x0) / (x1 - x0) * (W - m.l - m.r), Y = (y) => H - m.b - (y - y0) / (y1 - y0) * (H - m.t - m.b);
    const root = svg("svg", {viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "aria-label": opts.title || "chart"});
    ticks(y0, y1, 5).forEach((v) => {
      root.append(svg("line", {x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: "grid"}));
      root.append(svg("text", {x: m.l - 6, y: Y(v) + 4, class: "tick", "text-anchor": "end", text: short(v)}));
    });
    const xt = ticks(x0, x1, 8);
    xt.forEach((v) => root.append(svg("text", {x: X(v), y: H - m.b + 16, class: "tick", "text-anchor": "middle", text: opts.xFormat ? opts.xFormat(v) : short(v)})));
    root.append(svg("text", {x: (m.l + W - m.r) / 2, y: H - 4, class: "axis-label", "text-anchor": "middle", text: opts.xLabel || ""}));
    root.append(svg("text", {x: 12, y: (m.t + H - m.b) / 2, class: "axis-label", "text-anchor": "middle", transform: "rotate(-90 12 " + (m.t + H - m.b) / 2 + ")", text: opts.yLabel || ""}));
    (opts.bands || []).forEach((b) => {
      const upper = b.x.map((x, i) => X(x) + "," + Y(b.hi[i])), lower = b.x.map((x, i) => X(x) + "," + Y(b.lo[i])).reverse();
      root.append(svg("polygon", {points: upper.concat(lower).join(" "), class: "band " + (b.cls || "")}, [svg("title", {text: b.label || ""})]));
    });
    (opts.lines || []).forEach((l) => {
      const points = [];
      l.x.forEach((x, i) => { if (l.y[i] !== null && isFinite(l.y[i])) points.push(X(x) + "," + Y(l.y[i])); });
      root.append(svg("polyline", {points: points.join(" "), class: "line " + (l.cls || "")}, [svg("title", {text: l.label || ""})]));
    });
    if (opts.marker !== undefined) root.append(svg("line", {x1: X(opts.marker), x2: X(opts.marker), y1: m.t, y2: H - m.b, class: "marker"}));
    const legend = el("div", {class: "chart-legend"}, (opts.lines || []).concat(opts.bands || []).filter((s) => s.label)
      .map((s) => el("span", {class: "key " + (s.cls || "")}, [el("i"), s.label])));
    return el("figure", {class: "chart-box"}, [root, legend]);
  }
  function ticks(lo, hi, count) {
    const step0 = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(step0 || 1)));
    const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= step0) || mag * 10;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }
  const short = (v) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? Number(v).toExponential(1) : String(Number(v.toPrecision(4))));

  // ---- the gates of one sequence: a layer and a quantity picked, a units x steps heatmap ----
  // layers: [{layer, direction, names: {name: packed (T, H)}}]; state: {layer, name}, kept by the caller; redraw()
  function gates(layers, state, redraw, bidirectional) {
    state.layer = Math.min(state.layer, layers.length - 1);
    const layer = layers[state.layer], names = Object.keys(layer.names);
    if (!state.name || !names.includes(state.name)) state.name = names.includes("h") ? "h" : names[names.length - 1];
    const layerPick = el("select", {id: "gate-layer"}, layers.map((l, k) => el("option", {value: k, selected: k === state.layer,
      text: "layer " + l.layer + (bidirectional ? (l.direction ? " backward" : " forward") : "")})));
    const namePick = el("select", {id: "gate-name"}, names.map((n) => el("option", {value: n, text: n, selected: n === state.name})));
    layerPick.addEventListener("change", () => { state.layer = Number(layerPick.value); redraw(); });
    namePick.addEventListener("change", () => { state.name = namePick.value; redraw(); });
    const p = unpack(layer.names[state.name]), inRange = IN_UNIT_RANGE.includes(state.name);
    const end = inRange ? 1 : reach(p.values);
    return [el("div", {class: "controls"}, [el("label", {}, ["gates of ", layerPick]), el("label", {}, ["quantity ", namePick])]),
      heatmap({rows: p.cols, cols: p.rows, lo: p.lo, hi: p.hi, at: (r, c) => p.at(c, r)},
        {title: state.name, rowLabel: "unit", colLabel: "step", diverging: !inRange, lo: inRange ? 0 : -end, hi: end})];
  }

  // ---- a table ----
  function table(columns, rows, opts) {
    const head = el("tr", {}, columns.map((c) => el("th", {text: c})));
    const body = rows.map((row, i) => el("tr", {class: opts && opts.rowClass ? opts.rowClass(i) : "", on: opts && opts.onPick ? {click: () => opts.onPick(i)} : {}},
      row.map((cell) => el("td", {text: cell}))));
    return el("table", {class: "grid-table" + (opts && opts.onPick ? " pickable" : "")}, [el("thead", {}, head), el("tbody", {}, body)]);
  }

  // ---- start ----
  async function start(render) {
    const app = document.getElementById("app");
    try {
      const about = await info();
      document.getElementById("about").textContent = about.run + " · " + about.task + " · " + about.arch + " " +
        about.layers + " × " + about.hidden + (about.block && about.block !== "stack" ? " (" + about.block + " blocks)" : "");
      document.getElementById("mode").textContent = bundle ? "exported page: the answers for its own input, no server" : "live";
      document.title = "rnnlab view · " + about.run;
      app.textContent = "";
      await render(app, about);
      app.setAttribute("data-ready", "1");
    } catch (err) {
      notice(err.message);
      app.setAttribute("data-ready", "error");
    }
  }

  return {bundle, key, info, ask, unpack, exact, scale, blues, reach, css, ink, el, svg, card, notice, fmt, visible, heatmap, gates, chart, table,
          start, IN_UNIT_RANGE, exported: !!bundle};
})();
