// Chapter 4: VQ-VAE-2's two code grids of a test digit as cells. Choose a cell, choose a code,
// and the decoder draws the edited grids. Below, class-conditional sampling with the two
// PixelCNN priors, one position at a time, at the temperature of the slider.
import { kinds, paint, runs, session } from "./explorers.js";

// A small seeded generator (mulberry32), so that a seed gives the same sample every time.
function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Draw one code from logits[k * G * G + position] / temperature.
function draw(logits, position, cells, codes, temperature, random) {
  let top = -Infinity;
  const scaled = new Float64Array(codes);
  for (let k = 0; k < codes; k++) {
    scaled[k] = logits[k * cells + position] / temperature;
    top = Math.max(top, scaled[k]);
  }
  let total = 0;
  for (let k = 0; k < codes; k++) total += (scaled[k] = Math.exp(scaled[k] - top));
  let u = random() * total;
  for (let k = 0; k < codes; k++) if ((u -= scaled[k]) <= 0) return k;
  return codes - 1;
}

kinds["vq-grid"] = async (element, ort, config, base) => {
  const live = element.querySelector(".ln-live");
  const output = live.querySelector("canvas.ln-output");
  const readout = live.querySelector(".ln-readout");
  const codeInput = live.querySelector("input.ln-code");
  const decoder = await session(ort, new URL(config.decoder, base).href);
  const grids = { top: config.top.map(r => r.slice()), bottom: config.bottom.map(r => r.slice()) };
  const size = { top: config.codes_top, bottom: config.codes_bottom };
  let chosen = { level: "bottom", row: 0, column: 0 };
  const queue = runs();

  const tensor = grid => new ort.Tensor("int64", BigInt64Array.from(grid.flat().map(BigInt)),
                                        [1, grid.length, grid.length]);

  function drawGrid(level) {
    const table = live.querySelector(`table.ln-${level}`);
    table.innerHTML = "";
    grids[level].forEach((row, r) => {
      const tr = table.insertRow();
      row.forEach((code, c) => {
        const td = tr.insertCell();
        td.textContent = code;
        td.dataset.row = r;
        td.dataset.column = c;
        const on = chosen.level === level && chosen.row === r && chosen.column === c;
        td.style.cssText = "border:1px solid #bbb;padding:1px 3px;text-align:right;cursor:pointer;" +
                           `font-size:0.75em;background:${on ? "#fdae6b" : "#fff"}`;
        td.addEventListener("click", () => set({ choose: { level, row: r, column: c } }));
      });
    });
  }

  async function decode() {
    const started = performance.now();
    const result = await decoder.run({ top: tensor(grids.top), bottom: tensor(grids.bottom) });
    paint(output, result.image.data, config.shape);
    const ms = performance.now() - started;
    readout.textContent = `${chosen.level} cell (${chosen.row}, ${chosen.column}) = ` +
                          `${grids[chosen.level][chosen.row][chosen.column]}; decoded in ` +
                          `${ms.toFixed(1)} ms`;
    return ms;
  }

  // The grids shown and decoded: the reader's edits (`set`, which stops a sample in flight: the
  // reader's edit wins) and a finished sample both end here.
  function show(values) {
    if (values.top) grids.top = values.top.map(r => r.slice());
    if (values.bottom) grids.bottom = values.bottom.map(r => r.slice());
    if (values.choose) chosen = values.choose;
    if (values.code !== undefined && Number.isFinite(values.code)) {
      const k = Math.max(0, Math.min(size[chosen.level] - 1, Math.round(values.code)));
      grids[chosen.level][chosen.row][chosen.column] = k;
    }
    codeInput.max = size[chosen.level] - 1;
    codeInput.value = grids[chosen.level][chosen.row][chosen.column];
    drawGrid("top");
    drawGrid("bottom");
  }

  function set(values) {
    queue.cancel("sample");
    show(values);
    return queue.ask("decode", decode);
  }
  codeInput.addEventListener("input", () => set({ code: Number(codeInput.value) }));

  // Sampling: the top grid given the label, then the bottom grid given the top codes too. The
  // priors load on the first sample (most of the page's models; editing does not need them). A
  // newer sample, or an edit, stops this one between two positions.
  const loadPriors = async () => ({
    top: await session(ort, new URL(config.priors.top, base).href),
    bottom: await session(ort, new URL(config.priors.bottom, base).href),
  });

  function sample(label, temperature, seed) {
    return queue.ask("sample", async stale => {
      const priors = await loadPriors();  // fetched once, then the sessions are reused
      const started = performance.now();
      const random = generator(seed);
      const labelTensor = new ort.Tensor("int64", BigInt64Array.from([BigInt(label)]), [1]);
      const top = grids.top.map(r => r.map(() => 0));
      const gt = top.length;
      for (let i = 0; i < gt * gt; i++) {
        const result = await priors.top.run({ codes: tensor(top), label: labelTensor });
        if (stale()) return null;
        top[Math.floor(i / gt)][i % gt] = draw(result.logits.data, i, gt * gt, size.top,
                                               temperature, random);
      }
      const bottom = grids.bottom.map(r => r.map(() => 0));
      const gb = bottom.length;
      const factor = gb / gt;
      const cond = bottom.map((r, i) => r.map((_, j) => top[Math.floor(i / factor)][Math.floor(j / factor)]));
      const condTensor = tensor(cond);
      for (let i = 0; i < gb * gb; i++) {
        const result = await priors.bottom.run({ codes: tensor(bottom), label: labelTensor,
                                                 cond: condTensor });
        if (stale()) return null;
        bottom[Math.floor(i / gb)][i % gb] = draw(result.logits.data, i, gb * gb, size.bottom,
                                                  temperature, random);
      }
      show({ top, bottom });
      await decode();
      const ms = performance.now() - started;
      live.querySelector(".ln-sample-time").textContent = `sampled in ${(ms / 1000).toFixed(2)} s`;
      return ms;
    });
  }

  if (config.priors) {
    const labelChoice = live.querySelector("select.ln-label");
    config.classes.forEach((name, k) => labelChoice.add(new Option(name, String(k))));
    if (config.no_label !== null) labelChoice.add(new Option("no label", String(config.no_label)));
    const temperature = live.querySelector("input.ln-temperature");
    const shownT = live.querySelector(".ln-temperature-value");
    temperature.addEventListener("input", () => { shownT.textContent = temperature.value; });
    let seed = 0;
    live.querySelector("button.ln-sample").addEventListener("click", () => {
      sample(Number(labelChoice.value), Number(temperature.value), seed++);
    });
  } else {
    live.querySelector(".ln-sampling").hidden = true;
  }

  await set({});
  return {
    set,
    sample,
    done: queue.done,
    grids: () => grids,
    pixels: () => Array.from(output.getContext("2d").getImageData(
      0, 0, output.width, output.height).data),
  };
};
