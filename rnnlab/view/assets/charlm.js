// rnnlab view, a character model: type text and see every unit and gate per character (Karpathy's picture and a
// units x characters heatmap), what the model expects next, units found by hypothesis (LSTMVis), sampling.
"use strict";

RV.start(async (app, info) => {
  const {el, card, ask, unpack, fmt, visible} = RV;
  const state = {text: info.passage, layer: 0, name: info.names.includes("h") ? "h" : info.names[info.names.length - 1],
                 unit: 0, focus: 0, held: {}, marks: null, version: 0};

  // ---- controls ----
  const input = el("textarea", {id: "text", rows: 5, spellcheck: "false", maxlength: info.limits.text, readonly: RV.exported});
  input.value = state.text;
  const layerPick = el("select", {id: "layer"}, [...Array(info.layer_count).keys()].map((k) => el("option", {value: k, text: "layer " + k})));
  const namePick = el("select", {id: "quantity"}, info.names.map((n) => el("option", {value: n, text: n, selected: n === state.name})));
  const unitPick = el("input", {id: "unit", type: "number", min: 0, value: 0, step: 1});
  const count = el("span", {id: "count", class: "muted"});
  app.append(card("Your text", "Type or paste text" + (RV.exported ? " (an exported page shows the text it was made with)" : "") +
    ": every character goes through the network, and the views below redraw. The passage it opens with is from the text the model was trained on (its held-out part).",
    [input, el("div", {class: "controls"}, [el("label", {}, ["layer ", layerPick]), el("label", {}, ["quantity ", namePick]),
      el("label", {}, ["unit ", unitPick]), count])]));

  const colored = el("div", {id: "colored", class: "colored-text"});
  const focusBox = el("div", {id: "next", class: "next"});
  app.append(card("The text coloured by one unit", "Each character's background is the chosen unit's value after reading it " +
    "(blue negative, red positive; gates 0 to 1 from dark to yellow). Hover or click a character: below, what the model expected next.",
    [colored, focusBox]));
  const heatBox = el("div", {id: "heat"});
  app.append(card("Every unit, every character", "Rows are the units of the chosen layer and quantity, columns the characters " +
    "of your text. Click a row to colour the text by that unit.", [heatBox]));

  const regex = el("input", {id: "regex", type: "text", value: "\"[^\"]*\"", size: 28});
  const rankButton = el("button", {id: "rank", text: "Rank units"});
  const markButton = el("button", {id: "mark", text: "Mark the selected characters"});
  const clearButton = el("button", {id: "clear", text: "Clear marks"});
  const rankBox = el("div", {id: "ranking"});
  app.append(card("Find units by hypothesis", "Mark characters -- by a regular expression (e.g. \"[^\"]*\" for inside quotes, " +
    "(?<=\\n). for the first character of a line) or by selecting them in the coloured text -- and rank every unit of every layer " +
    "by how well its chosen quantity separates the marked characters from the rest (r: the correlation of the unit with the marks, -1 .. 1).",
    [el("div", {class: "controls"}, [el("label", {}, ["regular expression ", regex]), rankButton, markButton, clearButton]), rankBox]));

  const firstLine = info.passage.replace(/^\s+/, "").split("\n")[0].slice(0, 40);
  const prime = el("input", {id: "prime", type: "text", value: firstLine || info.passage.slice(0, 1), size: 40, maxlength: 500});
  const length = el("input", {id: "length", type: "number", min: 1, max: info.limits.sample, value: 200});
  const temperature = el("input", {id: "temperature", type: "range", min: 0.05, max: 2, step: 0.05, value: 0.8});
  const tempShown = el("span", {class: "muted", text: "0.80"});
  const seed = el("input", {id: "seed", type: "number", min: 0, value: 0});
  const sampleButton = el("button", {id: "sample", text: "Sample", disabled: RV.exported});
  const sampled = el("div", {id: "sampled", class: "colored-text sampled"});
  const distBox = el("div", {id: "distribution"});
  temperature.addEventListener("input", () => { tempShown.textContent = Number(temperature.value).toFixed(2); });
  app.append(card("Sample", RV.exported ? "Sampling needs the live server: rnnlab view --model " + info.run :
    "The model writes on from the prime, one character at a time, drawing each from its distribution divided by the temperature. " +
    "Click a sampled character to see the distribution it was drawn from.",
    [el("div", {class: "controls"}, [el("label", {}, ["prime ", prime]), el("label", {}, ["characters ", length]),
      el("label", {}, ["temperature ", temperature, tempShown]), el("label", {}, ["seed ", seed]), sampleButton]), sampled, distBox]));

  // ---- what the page holds: per layer and quantity, the values of every character of the text it was asked for ----
  function joined(a, b) { const out = new a.constructor(a.length + b.length); out.set(a); out.set(b, a.length); return out; }
  async function fetchHeld(layer, name) {  // typing asks only for the characters after those already held
    const at = layer + "/" + name, held = state.held[at], text = state.text;
    if (held && held.text === text) return held;
    const since = held && !RV.exported && text.startsWith(held.text) ? [...held.text].length : 0;
    const a = await ask("activations", {layer, name, since, text});
    if (state.text !== text) return null;  // a newer text is on its way
    const chunk = unpack(a.names[name]), top = RV.exact(a.top), p = RV.exact(a.p), loss = RV.exact(a.loss);
    state.held[at] = since ?  // the loss of character since - 1 is new too: what came after it is known now
      {text, cols: chunk.cols, values: joined(held.values, chunk.values), top: joined(held.top, top.values),
       p: joined(held.p, p.values), loss: joined(held.loss.slice(0, since - 1), loss.values)} :
      {text, cols: chunk.cols, values: chunk.values, top: top.values, p: p.values, loss: loss.values};
    return state.held[at];
  }
  const current = () => state.held[state.layer + "/" + state.name];

  // ---- drawing ----
  function grid() {  // the chosen quantity of the chosen layer as units x characters
    const h = current(), steps = h.values.length / h.cols;
    let lo = Infinity, hi = -Infinity;
    for (const v of h.values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    return {rows: h.cols, cols: steps, lo, hi, at: (r, c) => h.values[c * h.cols + r], values: h.values};
  }
  function draw() {
    const g = grid(), units = g.rows, chars = [...state.text];
    unitPick.max = units - 1;
    state.unit = Math.min(state.unit, units - 1);
    unitPick.value = state.unit;
    count.textContent = chars.length + " characters · " + units + " " + (units === info.hidden ? "units" : "rows");
    const inRange = RV.IN_UNIT_RANGE.includes(state.name), end = inRange ? 1 : RV.reach(g.values);
    const s = RV.scale(inRange ? 0 : -end, end, !inRange);
    colored.textContent = "";
    chars.forEach((ch, i) => {
      const rgb = s.color(g.at(state.unit, i));
      const span = el("span", {"data-i": i, class: "ch" + (state.marks && state.marks[i] ? " marked" : "") + (i === state.focus ? " focus" : ""),
                               text: ch === "\n" ? "⏎\n" : ch});
      span.style.background = RV.css(rgb);
      span.style.color = RV.ink(rgb);
      span.title = "character " + i + " " + JSON.stringify(ch) + ": " + state.name + "[" + state.unit + "] = " + fmt(g.at(state.unit, i));
      colored.append(span);
    });
    heatBox.textContent = "";
    heatBox.append(RV.heatmap(g, {title: state.name, rowLabel: "unit", colLabel: "character", colLabels: chars,
      diverging: !inRange, lo: inRange ? 0 : -end, hi: end,
      onPick: (unit) => { state.unit = unit; draw(); }}));
    drawFocus();
  }
  function drawFocus() {
    const h = current(), chars = [...state.text], i = Math.min(state.focus, chars.length - 1), top = h.top.length / chars.length;
    focusBox.textContent = "";
    const rows = [...Array(top).keys()].map((k) => el("div", {class: "bar-row"}, [
      el("span", {class: "bar-label", text: JSON.stringify(info.vocab[h.top[i * top + k]])}),
      el("span", {class: "bar", style: "width:" + Math.max(1, Math.round(240 * h.p[i * top + k] / 65535)) + "px"}),
      el("span", {class: "muted", text: fmt(h.p[i * top + k] / 65535, 3)})]));
    const came = i + 1 < chars.length ? "the character that came, " + JSON.stringify(chars[i + 1]) + ", cost " + fmt(h.loss[i], 2) +
      " nats (" + fmt(h.loss[i] / Math.LN2, 2) + " bits)" : "the last character: nothing came after it";
    focusBox.append(el("p", {text: "After " + JSON.stringify(chars.slice(Math.max(0, i - 20), i + 1).join("")) + " the model expects:"}),
                    el("div", {class: "bars", id: "next-bars"}, rows), el("p", {class: "muted", text: came}));
  }

  async function refresh() {
    const version = ++state.version;
    try {
      const held = await fetchHeld(state.layer, state.name);
      if (version !== state.version || !held) return;  // a newer text is on its way
      RV.notice("");
      draw();
    } catch (err) { if (version === state.version) RV.notice(err.message); }
  }

  // ---- hypotheses ----
  function marksFromRegex() {
    const marks = new Uint8Array(state.text.length);
    let pattern;
    try { pattern = new RegExp(regex.value, "gmu"); } catch (err) { throw new Error("that is not a regular expression: " + err.message); }
    const chars = [...state.text];
    const offsets = []; let u = 0;  // UTF-16 offset -> character index
    chars.forEach((ch, i) => { for (let k = 0; k < ch.length; k++) offsets[u + k] = i; u += ch.length; });
    for (const match of state.text.matchAll(pattern)) {
      if (!match[0].length) continue;
      for (let k = match.index; k < match.index + match[0].length; k++) marks[offsets[k]] = 1;
    }
    return marks;
  }
  async function rank() {
    try {
      const marked = state.marks.reduce((a, b) => a + b, 0);
      if (!marked || marked === state.marks.length) throw new Error("mark some characters, not none or all (" + marked + " of " + state.marks.length + " marked)");
      const scores = [];
      for (let layer = 0; layer < info.layer_count; layer++) {
        const held = await fetchHeld(layer, state.name);
        if (!held) return;
        const n = held.values.length / held.cols;
        for (let unit = 0; unit < held.cols; unit++) {
          let sx = 0, sxx = 0, sxm = 0;
          for (let t = 0; t < n; t++) { const x = held.values[t * held.cols + unit]; sx += x; sxx += x * x; if (state.marks[t]) sxm += x; }
          const mean = sx / n, sd = Math.sqrt(Math.max(0, sxx / n - mean * mean)), share = marked / n;
          const inside = sxm / marked, outside = (sx - sxm) / (n - marked);
          const r = sd > 1e-9 ? (inside - outside) * Math.sqrt(share * (1 - share)) / sd : 0;
          scores.push({layer, unit, r, inside, outside});
        }
      }
      scores.sort((a, b) => Math.abs(b.r) - Math.abs(a.r));
      const top = scores.slice(0, 12);
      rankBox.textContent = "";
      rankBox.append(el("p", {class: "muted", text: marked + " of " + state.marks.length + " characters marked; " + scores.length + " units ranked by |r| of " + state.name}),
        RV.table(["rank", "layer", "unit", "r", "mean, marked", "mean, the rest"],
          top.map((s, k) => [k + 1, s.layer, s.unit, fmt(s.r, 3), fmt(s.inside, 3), fmt(s.outside, 3)]),
          {onPick: (k) => { state.layer = top[k].layer; state.unit = top[k].unit; layerPick.value = state.layer;
                            fetchHeld(state.layer, state.name).then(draw); }}));
      rankBox.querySelector("tbody tr").setAttribute("id", "top-unit");
      draw();
      RV.notice("");
    } catch (err) { RV.notice(err.message); }
  }
  function markSelection() {
    const selection = window.getSelection();
    if (!selection.rangeCount) return;
    const range = selection.getRangeAt(0);
    state.marks = state.marks || new Uint8Array(state.text.length);
    colored.querySelectorAll(".ch").forEach((span) => { if (range.intersectsNode(span)) state.marks[Number(span.dataset.i)] = 1; });
    draw();
    rank();
  }

  // ---- sampling ----
  async function sample() {
    try {
      sampleButton.disabled = true;
      const answer = await ask("sample", {prime: prime.value, length: Number(length.value), temperature: Number(temperature.value), seed: Number(seed.value)});
      sampled.textContent = "";
      sampled.append(el("span", {class: "prime", text: answer.prime}));
      [...answer.text].forEach((ch, i) => sampled.append(el("span", {class: "ch", "data-i": i, text: ch === "\n" ? "⏎\n" : ch,
        on: {click: () => showDistribution(answer, i)}})));
      showDistribution(answer, 0);
      RV.notice("");
    } catch (err) { RV.notice(err.message); } finally { sampleButton.disabled = RV.exported; }
  }
  function showDistribution(answer, i) {
    const probs = answer.probs[i], total = probs.reduce((a, b) => a + b, 0);
    const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a]).slice(0, 15);
    distBox.textContent = "";
    distBox.append(el("p", {text: "Step " + (i + 1) + ": drew " + JSON.stringify(answer.text[i]) + " at temperature " + fmt(answer.temperature, 2) +
        "; the 15 likeliest of " + probs.length + " characters:"}),
      el("div", {class: "bars"}, order.map((id) => el("div", {class: "bar-row" + (id === answer.chosen[i] ? " chosen" : "")}, [
        el("span", {class: "bar-label", text: JSON.stringify(info.vocab[id])}),
        el("span", {class: "bar", style: "width:" + Math.max(1, Math.round(240 * probs[id])) + "px"}),
        el("span", {class: "muted", text: fmt(probs[id], 4)})]))),
      el("p", {id: "distribution-sum", class: "muted", "data-sum": total, text: "all " + probs.length + " probabilities sum to " + fmt(total, 4)}));
  }

  // ---- events ----
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!input.value.length) { RV.notice("type some text"); return; }
      state.text = input.value; state.marks = null; state.focus = Math.min(state.focus, [...state.text].length - 1); refresh();
    }, 150);
  });
  layerPick.addEventListener("change", async () => {
    state.layer = Number(layerPick.value);
    try { await fetchHeld(state.layer, state.name); draw(); } catch (err) { RV.notice(err.message); }
  });
  namePick.addEventListener("change", async () => {
    state.name = namePick.value;
    try { await fetchHeld(state.layer, state.name); draw(); } catch (err) { RV.notice(err.message); }
  });
  unitPick.addEventListener("change", () => { state.unit = Math.max(0, Number(unitPick.value) || 0); draw(); });
  colored.addEventListener("mouseover", (event) => { const i = event.target.dataset && event.target.dataset.i; if (i !== undefined) { state.focus = Number(i); drawFocus(); } });
  rankButton.addEventListener("click", () => {
    try { state.marks = marksFromRegex(); rank(); } catch (err) { RV.notice(err.message); }
  });
  markButton.addEventListener("click", markSelection);
  clearButton.addEventListener("click", () => { state.marks = null; rankBox.textContent = ""; draw(); });
  sampleButton.addEventListener("click", sample);
  await refresh();
});
