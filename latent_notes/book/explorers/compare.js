// Chapter 5: the three families side by side. A slider blends the codes of two test digits
// (each family in its own code space); a pad takes a drawn digit, which every model encodes and
// decodes, and the VAE's μ of it is marked among the test codes on their two principal axes.
import { kinds, paint, runs, session } from "./explorers.js";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];

// The pad's drawing → a 28 × 28 image in the data's convention (ink 1, paper 0), prepared as
// MNIST's digits were: the ink's bounding square scaled to 20 × 20 (area average), then placed
// in 28 × 28 with its centre of mass at the centre.
export function prepare(pad, size = 28, box = 20) {
  const { width, height } = pad;
  const rgba = pad.getContext("2d").getImageData(0, 0, width, height).data;
  const ink = new Float32Array(width * height);
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let i = 0; i < width * height; i++) {
    ink[i] = 1 - rgba[4 * i] / 255;
    if (ink[i] > 0.05) {
      const x = i % width, y = Math.floor(i / width);
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
  }
  const image = new Float32Array(size * size);
  if (x1 < 0) return image;  // nothing drawn
  const side = Math.max(x1 - x0, y1 - y0) + 1;
  const left = x0 - (side - (x1 - x0 + 1)) / 2, top = y0 - (side - (y1 - y0 + 1)) / 2;
  const small = new Float32Array(box * box), count = new Float32Array(box * box);
  for (let y = Math.floor(top); y < top + side; y++) {
    for (let x = Math.floor(left); x < left + side; x++) {
      const j = Math.min(box - 1, Math.floor((x - left) / side * box));
      const k = Math.min(box - 1, Math.floor((y - top) / side * box));
      if (j < 0 || k < 0) continue;
      const inside = x >= 0 && y >= 0 && x < width && y < height;
      small[k * box + j] += inside ? ink[y * width + x] : 0;
      count[k * box + j] += 1;
    }
  }
  let mass = 0, mx = 0, my = 0;
  for (let i = 0; i < box * box; i++) {
    small[i] /= Math.max(1, count[i]);
    mass += small[i]; mx += small[i] * (i % box); my += small[i] * Math.floor(i / box);
  }
  const dx = Math.round(size / 2 - 0.5 - mx / mass), dy = Math.round(size / 2 - 0.5 - my / mass);
  for (let i = 0; i < box * box; i++) {
    const x = (i % box) + dx, y = Math.floor(i / box) + dy;
    if (x >= 0 && y >= 0 && x < size && y < size) image[y * size + x] = small[i];
  }
  return image;
}

kinds.compare = async (element, ort, config, base) => {
  const live = element.querySelector(".ln-live");
  const names = Object.keys(config.families);
  // The decoders load with the page; the encoders only when the reader first draws (they are
  // more than half of the page's models, and the slider does not need them).
  const models = {};
  for (const name of names) {
    models[name] = { decoder: await session(ort, new URL(config.families[name].decoder, base).href) };
  }
  const encoder = name => session(ort, new URL(config.families[name].encoder, base).href);
  const [channels, height, width] = config.shape;
  const slider = live.querySelector("input.ln-blend");
  const readout = live.querySelector(".ln-readout");
  live.querySelector(".ln-from").textContent = config.ends[0];
  live.querySelector(".ln-to").textContent = config.ends[1];
  const queue = runs();

  async function decode(name, z) {
    const result = await models[name].decoder.run({
      z: new ort.Tensor("float32", z, [1, z.length]) });
    return result.image.data;
  }

  async function blend() {
    const t = Number(slider.value);
    live.querySelector(".ln-blend-value").textContent = t.toFixed(2);
    const started = performance.now();
    for (const name of names) {
      const [a, b] = config.families[name].ends;
      const z = Float32Array.from(a, (v, i) => (1 - t) * v + t * b[i]);
      paint(live.querySelector(`canvas.ln-out-${name}`), await decode(name, z), config.shape);
    }
    const ms = performance.now() - started;
    readout.textContent = `t = ${t.toFixed(2)}: ${names.length} decoders in ${ms.toFixed(1)} ms`;
    return ms;
  }

  // The drawing pad, its 28-pixel input, the reconstructions and the VAE's plane.
  const pad = live.querySelector("canvas.ln-pad");
  let input = null;
  const plane = live.querySelector("canvas.ln-plane");
  const [[px0, px1], [py0, py1]] = config.plane.range;
  const toPlane = ([x, y]) => [(x - px0) / (px1 - px0) * plane.width,
                               (1 - (y - py0) / (py1 - py0)) * plane.height];
  let landed = null;

  function drawPlane() {
    const context = plane.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, plane.width, plane.height);
    const points = config.plane.scatter;
    context.globalAlpha = 0.5;
    for (let i = 0; i < points.label.length; i++) {
      const [x, y] = toPlane([points.x[i], points.y[i]]);
      context.fillStyle = COLOURS[points.label[i] % COLOURS.length];
      context.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
    context.globalAlpha = 1;
    if (landed) {
      const [x, y] = toPlane(landed);
      context.strokeStyle = "#000";
      context.lineWidth = 2;
      context.beginPath();
      context.moveTo(x - 8, y - 8); context.lineTo(x + 8, y + 8);
      context.moveTo(x + 8, y - 8); context.lineTo(x - 8, y + 8);
      context.stroke();
    }
  }

  // The drawing as each model reconstructs it, and the VAE's μ of it on the plane. The drawing
  // is read when the run starts; a newer drawing or "clear" makes the run stale, and a stale
  // run paints nothing more.
  async function reconstruct(stale) {
    const drawn = input;
    if (!drawn) return null;
    paint(live.querySelector("canvas.ln-input"), drawn, config.shape);
    const image = new ort.Tensor("float32", drawn, [1, channels, height, width]);
    let mark = null;
    for (const name of names) {
      const { z } = await (await encoder(name)).run({ image });
      const decoded = await decode(name, z.data);
      if (stale()) return null;
      paint(live.querySelector(`canvas.ln-rec-${name}`), decoded, config.shape);
      if (name === "vae") {
        const { mean, axes } = config.plane;
        mark = axes.map(axis => axis.reduce((sum, a, i) => sum + a * (z.data[i] - mean[i]), 0));
      }
    }
    landed = mark;
    drawPlane();
    return true;
  }

  function set(values) {
    if (values.blend !== undefined) slider.value = values.blend;
    const blended = queue.ask("blend", blend);  // resolves to the time the three decoders took
    if (values.image) input = Float32Array.from(values.image);
    return values.image && pad ? queue.ask("draw", reconstruct) : blended;
  }

  if (pad) {
    const context = pad.getContext("2d");
    const clear = () => { context.fillStyle = "#fff"; context.fillRect(0, 0, pad.width, pad.height); };
    clear();
    Object.assign(context, { strokeStyle: "#000", lineWidth: 22, lineCap: "round",
                             lineJoin: "round" });
    let last = null;
    const at = event => {
      const box = pad.getBoundingClientRect();
      return [(event.clientX - box.left) * pad.width / box.width,
              (event.clientY - box.top) * pad.height / box.height];
    };
    pad.addEventListener("pointerdown", event => { last = at(event); });
    pad.addEventListener("pointermove", event => {
      if (!last) return;
      const next = at(event);
      context.beginPath();
      context.moveTo(...last);
      context.lineTo(...next);
      context.stroke();
      last = next;
    });
    window.addEventListener("pointerup", () => {
      if (!last) return;
      last = null;
      input = prepare(pad, width, Math.round(width * 20 / 28));
      queue.ask("draw", reconstruct);
    });
    const blank = new Float32Array(channels * height * width);
    live.querySelector("button.ln-clear").addEventListener("click", () => {
      queue.cancel("draw");  // a reconstruction in flight stops before it paints again
      clear();
      input = null;
      landed = null;
      paint(live.querySelector("canvas.ln-input"), blank, config.shape);
      for (const name of names) paint(live.querySelector(`canvas.ln-rec-${name}`), blank, config.shape);
      drawPlane();
    });
    drawPlane();
  }
  slider.addEventListener("input", () => set({}));
  await set({});
  const pixels = canvas => Array.from(canvas.getContext("2d").getImageData(
    0, 0, canvas.width, canvas.height).data);
  return {
    set,
    done: queue.done,
    input: () => (input ? Array.from(input) : null),
    landed: () => landed,
    pixels: name => pixels(live.querySelector(`canvas.ln-out-${name}`)),
    reconstruction: name => pixels(live.querySelector(`canvas.ln-rec-${name}`)),
  };
};
