// Chapter 3: the VAE's two-dimensional latent plane. The test codes (μ of each test image) are
// drawn coloured by class; drag the point and the decoder draws the digit for that code.
import { kinds, paint, runs, session } from "./explorers.js";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];

kinds["vae-plane"] = async (element, ort, config, base) => {
  const live = element.querySelector(".ln-live");
  const plane = live.querySelector("canvas.ln-plane");
  const output = live.querySelector("canvas.ln-output");
  const choice = live.querySelector("select.ln-beta");
  const readout = live.querySelector(".ln-readout");
  const [[x0, x1], [y0, y1]] = config.range;
  const decoders = {};
  for (const [name, file] of Object.entries(config.decoders)) {
    decoders[name] = await session(ort, new URL(file, base).href);
    choice.add(new Option(name, name));
  }
  choice.hidden = Object.keys(decoders).length < 2;
  let z = config.start.slice();
  const queue = runs();

  const toPlane = ([x, y]) => [(x - x0) / (x1 - x0) * plane.width,
                               (1 - (y - y0) / (y1 - y0)) * plane.height];
  const fromPlane = (px, py) => [x0 + px / plane.width * (x1 - x0),
                                 y0 + (1 - py / plane.height) * (y1 - y0)];

  function drawPlane() {
    const context = plane.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, plane.width, plane.height);
    const points = config.scatter[choice.value] || config.scatter[Object.keys(decoders)[0]];
    for (let i = 0; i < points.label.length; i++) {
      const [px, py] = toPlane([points.x[i], points.y[i]]);
      context.fillStyle = COLOURS[points.label[i] % COLOURS.length];
      context.globalAlpha = 0.5;
      context.fillRect(px - 1.5, py - 1.5, 3, 3);
    }
    context.globalAlpha = 1;
    const [px, py] = toPlane(z);
    context.strokeStyle = "#000";
    context.lineWidth = 2;
    context.beginPath();
    context.arc(px, py, 7, 0, 2 * Math.PI);
    context.stroke();
  }

  async function decode() {
    const started = performance.now();
    const input = new ort.Tensor("float32", Float32Array.from(z), [1, 2]);
    const result = await decoders[choice.value].run({ z: input });
    paint(output, result.image.data, config.shape);
    const ms = performance.now() - started;
    readout.textContent = `z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)}), decoded in ` +
                          `${ms.toFixed(1)} ms`;
    return ms;
  }

  function set(values) {
    if (values.z) z = values.z.slice();
    if (values.beta) choice.value = values.beta;
    drawPlane();
    return queue.ask("decode", decode);
  }

  let dragging = false;
  const move = event => {
    const box = plane.getBoundingClientRect();
    set({ z: fromPlane((event.clientX - box.left) * plane.width / box.width,
                       (event.clientY - box.top) * plane.height / box.height) });
  };
  plane.addEventListener("pointerdown", event => { dragging = true; move(event); });
  plane.addEventListener("pointermove", event => { if (dragging) move(event); });
  window.addEventListener("pointerup", () => { dragging = false; });
  choice.addEventListener("change", () => set({}));
  await set({});
  return {
    set,
    done: queue.done,
    z: () => z.slice(),
    model: () => choice.value,
    pixels: () => Array.from(output.getContext("2d").getImageData(
      0, 0, output.width, output.height).data),
  };
};
