// rnnlab view, a forecaster: the run's scores; pick a series (search by id, sort by MASE or interval width) and see
// its history, the forecast of its last points with 80 / 95 % bands and the baselines, its scores, and what comes next.
"use strict";

RV.start(async (app, info) => {
  const {el, card, ask, fmt} = RV;
  const NAMES = {model: "rnnlab (what it forecasts)", network: "the network alone", combination: "the combination",
                 naive: "naive", seasonal_naive: "seasonal naive", drift: "drift", ets: "AutoETS", theta: "AutoTheta"};
  const columns = info.panel ? ["mase", "mase_geomean", "smape", "coverage80", "coverage95", "msis"] : ["mase", "mae", "rmse"];
  const summary = Object.entries(info.summary).map(([name, s]) => [NAMES[name] || name].concat(columns.map((c) => fmt(s[c], c.startsWith("coverage") ? 3 : 3))));
  app.append(card("The run's test scores", "Each model's scores on the last " + info.horizon + " points of every series" +
    (info.panel ? " (mean over series; coverage: the share of test points inside the 80 % and 95 % intervals; MSIS: M4's interval score)" : "") +
    (info.combined ? ". rnnlab forecasts with the " + info.combined.how + " of " + info.combined.members.join(", ") : "") + ".",
    [RV.table(["model"].concat(columns.map((c) => c.replace("_geomean", " (geo)"))), summary)]));

  const search = el("input", {id: "search", type: "search", placeholder: "series id…", size: 16});
  const sort = el("select", {id: "sort"}, [["mase-desc", "MASE, worst first"], ["mase-asc", "MASE, best first"],
    ["width-desc", "interval width, widest first"], ["width-asc", "interval width, narrowest first"], ["id-asc", "id"]]
    .map(([v, t]) => el("option", {value: v, text: t})));
  const listBox = el("div", {id: "series-list", class: "scroll"});
  const chartBox = el("div", {id: "series-chart"});
  const scoreBox = el("div", {id: "series-scores"});
  const listed = (await ask("series", {})).series;
  const left = card("Series", "Click one to draw it. Width: the mean width of its 80 % interval over the test part, in units of its " +
    "in-sample seasonal naive error (the scale of MASE).", [el("div", {class: "controls"}, [search, sort]), listBox]);
  const right = card("One series", info.drawn ? "The history (black), the forecast of the last " + info.horizon + " points made from before them " +
    "(blue, with its 80 % and 95 % bands), the baselines from the same point (dashed), and the forecast beyond the data (purple)." :
    "Start the page with the series to draw them: rnnlab view --model " + info.run + " --csv FILE.", [chartBox, scoreBox]);
  app.append(el("div", {class: "two"}, [left, right]));

  let shown = [];
  function drawList() {
    const query = search.value.trim().toLowerCase();
    const [by, way] = sort.value.split("-");
    shown = listed.filter((s) => !query || String(s.id).toLowerCase().includes(query));
    shown.sort((a, b) => {
      const x = a[by], y = b[by];
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : x > y ? 1 : 0) * (way === "asc" ? 1 : -1);
    });
    listBox.textContent = "";
    listBox.append(el("p", {class: "muted", text: shown.length + " of " + listed.length + " series"}),
      RV.table(["id", "MASE", "width", "forecaster"], shown.slice(0, 500).map((s) => [s.id, fmt(s.mase), fmt(s.width, 2), s.forecaster || "–"]),
        {onPick: (k) => pick(shown[k].id)}));
  }

  async function pick(id) {
    if (!info.drawn) return;
    try {
      const a = await ask("one", info.panel ? {id} : {});
      chartBox.textContent = ""; scoreBox.textContent = "";
      const n = a.values.length, x = [...Array(n).keys()];
      const labels = a.dates.concat(a.ahead.dates).map((d) => (typeof d === "string" ? d.slice(0, d.endsWith("01-01T00:00:00") ? 4 : 10) : String(d)));
      const xFormat = (v) => labels[Math.round(v)] || "";
      const ahead = [...Array(a.h).keys()].map((k) => n + k);
      const lines = [{x, y: a.values, label: "actual", cls: "actual"}], bands = [];
      if (info.panel) {
        const lv = a.levels, at = (q) => lv.indexOf(q);
        if (a.test) {
          const tx = [...Array(a.h).keys()].map((k) => a.test.from + k);
          bands.push({x: tx, lo: a.test.q[at(0.025)], hi: a.test.q[at(0.975)], cls: "b95", label: "95 % interval"});
          bands.push({x: tx, lo: a.test.q[at(0.1)], hi: a.test.q[at(0.9)], cls: "b80", label: "80 % interval"});
          lines.push({x: tx, y: a.test.q[at(0.5)], cls: "forecast", label: "forecast of the test part (" + a.forecaster + ")"});
          Object.entries(a.baselines).forEach(([name, y]) => lines.push({x: tx, y, cls: name, label: NAMES[name]}));
        }
        bands.push({x: ahead, lo: a.ahead.q[at(0.1)], hi: a.ahead.q[at(0.9)], cls: "f80", label: "80 % interval ahead"});
        lines.push({x: ahead, y: a.ahead.q[at(0.5)], cls: "future", label: "forecast beyond the data"});
      } else {
        const tx = a.one_step.network.map((_, k) => a.one_step.from + k);
        lines.push({x: tx, y: a.one_step.network, cls: "forecast", label: "one step ahead, the network"});
        lines.push({x: tx, y: a.one_step.base, cls: "naive", label: "one step ahead, " + a.one_step.base_name});
        lines.push({x: ahead, y: a.ahead.point, cls: "future", label: "forecast beyond the data"});
      }
      chartBox.append(el("h3", {id: "series-title", class: "series-title", text: "series " + a.id}),
        RV.chart({lines, bands, xFormat, xLabel: "date", yLabel: info.target || "value", marker: a.test ? a.test.from - 0.5 : undefined,
                  title: "series " + a.id}));
      if (a.scores) {
        scoreBox.append(RV.table(["this forecast", "MASE", "sMAPE", "coverage 80", "coverage 95", "MSIS"],
          [["test part", fmt(a.scores.mase), fmt(a.scores.smape, 1), fmt(a.scores.coverage80, 2), fmt(a.scores.coverage95, 2), fmt(a.scores.msis, 2)]]));
      }
      RV.notice("");
    } catch (err) { RV.notice(err.message); }
  }

  search.addEventListener("input", drawList);
  sort.addEventListener("change", drawList);
  drawList();
  if (info.drawn && shown.length) await pick(shown[0].id);
});
