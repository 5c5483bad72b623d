// The minimap: the whole laid-out graph in a small canvas in the pane's corner, the part on
// screen outlined; click or drag in it to move there. Cut points and starved nodes are drawn at
// a minimum size, so they stay visible however large the model.
import type { Rect, Transform } from "./viewport";

export interface MiniItem {
  bounds: Rect;
  kind: "flowing" | "zero" | "none" | "nonfinite" | "cut" | "cluster";
}

const WIDTH = 150;
const HEIGHT = 110;

export class Minimap {
  readonly element: HTMLCanvasElement;
  private image: HTMLCanvasElement | null = null;
  private scale = 1;
  private offset = { x: 0, y: 0 };

  constructor(private readonly jump: (x: number, y: number) => void) {
    this.element = document.createElement("canvas");
    this.element.className = "gf-minimap";
    this.element.width = WIDTH;
    this.element.height = HEIGHT;
    this.element.setAttribute("aria-label", "minimap: click to move the view");
    let down = false;
    const go = (e: PointerEvent): void => {
      const r = this.element.getBoundingClientRect();
      this.jump((e.clientX - r.left - this.offset.x) / this.scale, (e.clientY - r.top - this.offset.y) / this.scale);
    };
    this.element.addEventListener("pointerdown", (e) => {
      down = true;
      this.element.setPointerCapture(e.pointerId);
      go(e);
      e.stopPropagation();
    });
    this.element.addEventListener("pointermove", (e) => down && go(e));
    this.element.addEventListener("pointerup", () => (down = false));
  }

  /** Draws the graph once per layout (or restyle); `colour` maps a kind to a CSS colour. */
  draw(items: readonly MiniItem[], content: Rect, colour: (kind: MiniItem["kind"]) => string): void {
    this.scale = Math.min((WIDTH - 6) / Math.max(1, content.width), (HEIGHT - 6) / Math.max(1, content.height));
    this.offset = { x: (WIDTH - content.width * this.scale) / 2 - content.x * this.scale, y: (HEIGHT - content.height * this.scale) / 2 - content.y * this.scale };
    const image = this.image ?? document.createElement("canvas");
    image.width = WIDTH;
    image.height = HEIGHT;
    const g = image.getContext("2d");
    if (!g) return;
    g.clearRect(0, 0, WIDTH, HEIGHT);
    let cuts = 0;
    // clusters first, then nodes, cut points last and never smaller than 4 px
    const order = { cluster: 0, flowing: 1, zero: 1, nonfinite: 2, none: 1, cut: 3 };
    for (const item of [...items].sort((a, b) => order[a.kind] - order[b.kind])) {
      const b = item.bounds;
      const x = this.offset.x + b.x * this.scale;
      const y = this.offset.y + b.y * this.scale;
      const min = item.kind === "cut" ? 4 : item.kind === "none" || item.kind === "nonfinite" ? 2 : 1;
      const w = Math.max(min, b.width * this.scale);
      const h = Math.max(min, b.height * this.scale);
      if (item.kind === "cluster") {
        g.strokeStyle = colour("cluster");
        g.strokeRect(x, y, w, h);
        continue;
      }
      if (item.kind === "cut") cuts++;
      g.fillStyle = colour(item.kind);
      g.fillRect(x - (w - b.width * this.scale) / 2, y - (h - b.height * this.scale) / 2, w, h);
    }
    this.image = image;
    this.element.dataset.items = String(items.length);
    this.element.dataset.cuts = String(cuts);
  }

  /** Redraws the image and the outline of what the view shows. */
  showView(t: Transform, view: { width: number; height: number }): void {
    const g = this.element.getContext("2d");
    if (!g || !this.image) return;
    g.clearRect(0, 0, WIDTH, HEIGHT);
    g.drawImage(this.image, 0, 0);
    const x = this.offset.x + (-t.x / t.k) * this.scale;
    const y = this.offset.y + (-t.y / t.k) * this.scale;
    g.strokeStyle = "#ff6d00";
    g.lineWidth = 1.5;
    g.strokeRect(x, y, (view.width / t.k) * this.scale, (view.height / t.k) * this.scale);
  }
}
