// Chapter 2: one slider per coordinate of the autoencoder's code, starting from the code of a
// chosen test digit; every move decodes the whole code again.
import { kinds, paint, runs, session } from "./explorers.js";

kinds["ae-sliders"] = async (element, ort, config, base) => {
  const live = element.querySelector(".ln-live");
  const output = live.querySelector("canvas.ln-output");
  const choice = live.querySelector("select.ln-start");
  const sliders = live.querySelector(".ln-sliders");
  const readout = live.querySelector(".ln-readout");
  const decoder = await session(ort, new URL(config.decoder, base).href);
  config.examples.forEach((example, i) => choice.add(new Option(example.name, String(i))));
  let code = config.examples[0].code.slice();
  const queue = runs();

  const caption = document.createElement("p");
  caption.style.cssText = "font-size:0.85em;margin:0 0 0.3em";
  caption.textContent = "one slider per code coordinate, in standard deviations of the test " +
                        "codes (0: their mean)";
  sliders.before(caption);
  const inputs = code.map((_, j) => {
    const row = document.createElement("label");
    row.style.display = "block";
    row.textContent = `z${j + 1} `;
    const slider = document.createElement("input");
    Object.assign(slider, { type: "range", min: -3, max: 3, step: 0.05 });
    slider.addEventListener("input", () => {
      code[j] = config.mean[j] + Number(slider.value) * config.sd[j];
      set({});
    });
    const shown = document.createElement("span");
    shown.style.cssText = "display:inline-block;width:3.2em;text-align:right;font-family:monospace";
    row.append(slider, shown);
    sliders.appendChild(row);
    return { slider, shown };
  });

  function showCode() {  // sliders read in units of each coordinate's spread over test codes
    inputs.forEach(({ slider, shown }, j) => {
      slider.value = (code[j] - config.mean[j]) / config.sd[j];
      shown.textContent = (code[j] - config.mean[j]) / config.sd[j] >= 0 ? "+" : "";
      shown.textContent += ((code[j] - config.mean[j]) / config.sd[j]).toFixed(2);
    });
  }

  async function decode() {
    const started = performance.now();
    const result = await decoder.run({ z: new ort.Tensor("float32", Float32Array.from(code),
                                                         [1, code.length]) });
    paint(output, result.image.data, config.shape);
    const ms = performance.now() - started;
    readout.textContent = `decoded in ${ms.toFixed(1)} ms`;
    return ms;
  }

  function set(values) {
    if (values.example !== undefined) {
      code = config.examples[values.example].code.slice();
      choice.value = String(values.example);
    }
    if (values.code) code = values.code.slice();
    showCode();
    return queue.ask("decode", decode);
  }

  choice.addEventListener("change", () => set({ example: Number(choice.value) }));
  await set({ example: 0 });
  return {
    set,
    done: queue.done,
    code: () => code.slice(),
    pixels: () => Array.from(output.getContext("2d").getImageData(
      0, 0, output.width, output.height).data),
  };
};
