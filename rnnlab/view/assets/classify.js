// rnnlab view, a classifier: the confusion matrix (each cell opens its examples), the test sequences, and one
// sequence -- its input, the class probabilities step by step (when the network made up its mind), its gates.
"use strict";

RV.start(async (app, info) => {
  const {el, card, ask, fmt, unpack} = RV;
  const state = {filter: null, answer: null, layer: 0, name: null};
  const examples = (await ask("examples", {})).examples;

  if (info.tested) {
    const head = el("tr", {}, [el("th", {text: "true \\ predicted"})].concat(info.classes.map((c) => el("th", {text: c}))));
    const rows = info.confusion.map((row, i) => el("tr", {}, [el("th", {text: info.classes[i]})].concat(row.map((n, j) => {
      const cell = el("td", {class: i === j ? "diag" : "", text: n, title: n + " sequences of class " + info.classes[i] + " called " + info.classes[j],
                             on: {click: () => { state.filter = [info.classes[i], info.classes[j]]; drawList(); }}});
      const share = n / Math.max(1, row.reduce((a, b) => a + b, 0));
      const rgb = RV.blues(Math.sqrt(share));  // square root: a few mistakes still show
      cell.style.background = n ? RV.css(rgb) : "";
      cell.style.color = n ? RV.ink(rgb) : "";
      return cell;
    }))));
    app.append(card("Confusion matrix", "Test accuracy " + fmt(info.accuracy, 4) + " on " + info.count + " test sequences. " +
      "Rows are the true classes, columns what the network said; the colour is the share of the row. Click a cell to list its sequences.",
      [el("table", {id: "confusion", class: "grid-table confusion"}, [el("thead", {}, head), el("tbody", {}, rows)])]));
  }

  if (info.regress) {
    const m = info.metrics;
    app.append(card("A sequence regressor", "It predicts " + info.targets + " value" + (info.targets > 1 ? "s" : "") +
      " from a sequence. On its test part: RMSE " + fmt(m.test_rmse, 4) + ", MAE " + fmt(m.test_mae, 4) + ", R² " + fmt(m.test_r2, 3) +
      ". It was trained on arrays: upload a sequence to see what it predicts after each step.", []));
  }
  const listBox = el("div", {id: "examples", class: "scroll"});
  const upload = el("input", {id: "upload", type: "file", accept: ".npz,.csv", disabled: RV.exported});
  const oneBox = el("div", {id: "one"});
  app.append(el("div", {class: "two"}, [
    card(info.regress ? "Sequences" : "Test sequences", (info.tested ? "Click one to see it. " : "The model was trained on arrays: upload a sequence. ") +
      "Or upload one sequence (.npz with an array x of (steps, features), or a .csv with a row per step).", [el("div", {class: "controls"}, [upload]), listBox]),
    card("One sequence", "Its input; the probability of each class after each step, as the network would answer having read only that far; " +
      "and the gates of a layer over the steps.", [oneBox])]));

  function drawList() {
    const shown = examples.filter((e) => !state.filter || (e.label === state.filter[0] && e.predicted === state.filter[1]));
    listBox.textContent = "";
    listBox.append(el("p", {class: "muted", text: (state.filter ? "true " + state.filter[0] + ", predicted " + state.filter[1] + ": " : "") +
                                                   shown.length + " sequences"}));
    if (state.filter) listBox.append(el("button", {id: "show-all", text: "show all", on: {click: () => { state.filter = null; drawList(); }}}));
    listBox.append(RV.table(["#", "label", "predicted", "p"], shown.slice(0, 500).map((e) => [e.index, e.label, e.predicted + (e.label === e.predicted ? " ✓" : " ✗"), fmt(e.p, 3)]),
        {onPick: (k) => show({index: shown[k].index})}));
  }

  async function show(params, uploaded) {
    try {
      const a = uploaded ? await ask("upload", uploaded) : await ask("one", params);
      state.answer = a; state.layer = Math.min(state.layer, a.layers.length - 1);
      draw();
      RV.notice("");
    } catch (err) { RV.notice(err.message); }
  }

  function draw() {
    const a = state.answer;
    oneBox.textContent = "";
    const said = Array.isArray(a.predicted) ? a.predicted.map((v) => fmt(v, 4)).join(", ") : a.predicted;
    const title = a.index !== null ? "test sequence " + a.index + " · label " + a.label + " · predicted " + said : a.name + " · predicted " + said;
    oneBox.append(el("h3", {id: "one-title", class: "series-title", text: title}));
    const x = unpack(a.input);
    if (a.image) {  // rows x columns of an image, grey
      const canvas = el("canvas", {class: "pixels", width: x.cols, height: x.rows});
      const ctx = canvas.getContext("2d"), image = ctx.createImageData(x.cols, x.rows), span = (x.hi - x.lo) || 1;
      for (let i = 0; i < x.rows * x.cols; i++) {
        const v = Math.round(255 * (1 - (x.values[i] - x.lo) / span));
        image.data.set([v, v, v, 255], 4 * i);
      }
      ctx.putImageData(image, 0, 0);
      oneBox.append(el("p", {class: "muted", text: "The input: " + x.rows + " × " + x.cols + (a.steps === x.rows ? ", read a row per step" : ", read a pixel per step")}), canvas);
    } else if (x.cols <= 8) {
      const steps = [...Array(x.rows).keys()];
      oneBox.append(RV.chart({lines: [...Array(x.cols).keys()].map((f) => ({x: steps, y: Array.from(x.column(f)), cls: "c" + (f % 10), label: "feature " + f})),
        xLabel: "step", yLabel: "value", height: 220, title: "input"}));
    } else {
      oneBox.append(RV.heatmap({rows: x.cols, cols: x.rows, lo: x.lo, hi: x.hi, at: (r, c) => x.at(c, r)},
        {title: "input", rowLabel: "feature", colLabel: "step", diverging: true}));
    }
    if (a.values) {  // a regressor: its prediction after each step
      oneBox.append(el("p", {class: "muted", text: "The prediction after each step, as the network would answer having read only that far:"}),
        el("div", {id: "probs"}, RV.chart({lines: a.values[0].map((_, k) => ({x: a.points, y: a.values.map((v) => v[k]), cls: "c" + (k % 10), label: "value " + k})),
          xLabel: "steps read", yLabel: "prediction", height: 240, title: "predictions"})));
    } else {
      const top = [...info.classes.keys()].sort((i, j) => a.probs[a.probs.length - 1][j] - a.probs[a.probs.length - 1][i]).slice(0, 10);
      oneBox.append(el("p", {class: "muted", text: "Probability of each class after each step" + (top.length < info.classes.length ? " (the 10 likeliest at the end)" : "") + ":"}),
        el("div", {id: "probs"}, RV.chart({lines: top.map((c, k) => ({x: a.points, y: a.probs.map((p) => p[c]), cls: "c" + (k % 10), label: "class " + info.classes[c]})),
          xLabel: "steps read", yLabel: "probability", yRange: [0, 1], height: 240, title: "probabilities"})));
    }
    oneBox.append(...RV.gates(a.layers, state, draw, info.bidirectional));
  }

  upload.addEventListener("change", () => {
    const file = upload.files[0];
    if (!file) return;
    if (file.size > info.limits.upload) { RV.notice(file.name + " is " + file.size + " bytes; at most " + info.limits.upload + " are read"); return; }
    const reader = new FileReader();
    reader.onload = () => show(null, {name: file.name, data: String(reader.result).split(",")[1] || ""});
    reader.readAsDataURL(file);
  });
  drawList();
  if (examples.length) await show({index: examples[0].index});
});
