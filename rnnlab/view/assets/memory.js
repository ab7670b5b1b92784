// rnnlab view, a memory task: the held-out sequences with how much of each the network got right, and one
// sequence -- its input, the target, the network's answer and its gates over the steps.
"use strict";

RV.start(async (app, info) => {
  const {el, card, ask, fmt} = RV;
  const state = {answer: null, layer: 0, name: null};
  const m = info.metrics;
  app.append(card("The task: " + info.memory_task, info.about + ". Sequences of " + info.length + " steps" +
    (info.pairs ? ", " + info.pairs + " pairs among " + info.vocab + " tokens" : "") + ". On the held-out test sequences: " +
    (m.metric || "score") + " " + fmt(m.final, 4) + " (with no memory: " + fmt(m.baseline, 4) + ")" + (m.solved ? ", solved." : ", not solved."), []));
  const examples = (await ask("examples", {})).examples;
  const listBox = el("div", {id: "examples", class: "scroll"});
  const oneBox = el("div", {id: "one"});
  app.append(el("div", {class: "two"}, [
    card("Test sequences", "The first " + examples.length + " held-out sequences and each one's " + info.score + ". Click one.", [listBox]),
    card("One sequence", "The input step by step (the answer's steps outlined), the target and the network's answer, and the gates of a layer.", [oneBox])]));
  listBox.append(RV.table(["#", info.score], examples.map((e) => [e.index, fmt(e.score, 3)]), {onPick: (k) => show(examples[k].index)}));

  async function show(index) {
    try { state.answer = await ask("one", {index}); draw(); RV.notice(""); } catch (err) { RV.notice(err.message); }
  }

  function draw() {
    const a = state.answer;
    oneBox.textContent = "";
    oneBox.append(el("h3", {id: "one-title", class: "series-title", text: "test sequence " + a.index + " · " + info.score + " " + fmt(a.score, 3)}));
    const asked = new Set(a.where);
    if (a.tokens) {
      const right = new Map(a.where.map((t, k) => [t, a.answer[k] === a.target[k]]));
      oneBox.append(el("div", {id: "tokens", class: "tokens"}, a.tokens.map((tok, t) => el("span", {
        class: asked.has(t) ? (right.get(t) ? "right" : "wrong") : "", title: "step " + t + ": token " + tok, text: tok}))));
      oneBox.append(RV.table(["", "at steps"].concat(a.where.slice(0, 16).map((_, k) => String(k + 1))),
        [["target", ""].concat(a.target.slice(0, 16).map(String)), ["answer", ""].concat(a.answer.slice(0, 16).map(String)),
         ["step", ""].concat(a.where.slice(0, 16).map(String))]));
    } else {
      const steps = a.values.map((_, t) => t);
      oneBox.append(RV.chart({lines: [{x: steps, y: a.values.map((v) => v[0]), cls: "c0", label: "value"},
                                      {x: steps, y: a.values.map((v) => v[1]), cls: "c1", label: "marker"}],
        xLabel: "step", yLabel: "input", height: 200, title: "input"}),
        el("p", {text: "target " + fmt(a.target[0], 4) + " · the network's answer " + fmt(a.answer[0], 4)}));
    }
    oneBox.append(...RV.gates(a.layers, state, draw, false));
  }
  if (examples.length) await show(examples[0].index);
});
