// Pan and zoom arithmetic: screen = graph * k + (x, y).

export interface Transform {
  x: number;
  y: number;
  k: number;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const MIN_ZOOM = 0.02;
export const MAX_ZOOM = 3;

const clampZoom = (k: number): number => Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, k));

export function fitTransform(content: Rect, viewWidth: number, viewHeight: number, padding = 20, maxZoom = 1): Transform {
  const w = Math.max(1, content.width);
  const h = Math.max(1, content.height);
  const k = clampZoom(Math.min((viewWidth - 2 * padding) / w, (viewHeight - 2 * padding) / h, maxZoom));
  return {
    k,
    x: (viewWidth - w * k) / 2 - content.x * k,
    y: Math.max(padding, (viewHeight - h * k) / 2) - content.y * k,
  };
}

export function centreOn(px: number, py: number, t: Transform, viewWidth: number, viewHeight: number, k = t.k): Transform {
  return { k, x: viewWidth / 2 - px * k, y: viewHeight / 2 - py * k };
}

export function zoomAround(t: Transform, factor: number, sx: number, sy: number): Transform {
  const k = clampZoom(t.k * factor);
  const f = k / t.k;
  return { k, x: sx - (sx - t.x) * f, y: sy - (sy - t.y) * f };
}

/** The part of the graph on screen, grown by `margin` of the view on each side. */
export function visibleRect(t: Transform, viewWidth: number, viewHeight: number, margin = 0.5): Rect {
  const mx = viewWidth * margin;
  const my = viewHeight * margin;
  return { x: (-mx - t.x) / t.k, y: (-my - t.y) / t.k, width: (viewWidth + 2 * mx) / t.k, height: (viewHeight + 2 * my) / t.k };
}

export function intersects(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** What pans and zooms one SVG: the transform, the user's wheel, drag and keys, and resizes.
 * It knows nothing of what is drawn; `onChange` tells the drawing to follow (immediately, or on
 * the next frame), and whether the user moved it (so that linked panes follow the user only). */
export class Viewport {
  private t: Transform = { x: 0, y: 0, k: 1 };
  private drag: { x: number; y: number; t: Transform; moved: boolean } | null = null;
  private lastSize: { width: number; height: number } | null = null;
  /** the graph's extent, for "fit" */
  content: Rect | null = null;
  /** the graph point to keep in view on a resize (the selection); null keeps the centre */
  keep: () => { x: number; y: number } | null = () => null;
  /** set after a drag, so that the click that ends it does not select */
  suppressClick = false;

  constructor(
    private readonly svg: SVGSVGElement,
    private readonly onChange: (immediate: boolean, byUser: boolean) => void,
  ) {
    this.bind();
    if (typeof ResizeObserver !== "undefined") new ResizeObserver(() => this.resized()).observe(svg);
  }

  get transform(): Transform {
    return { ...this.t };
  }

  size(): { width: number; height: number } {
    const r = this.svg.getBoundingClientRect();
    return { width: r.width || 800, height: r.height || 600 };
  }

  set(t: Transform, immediate = false, byUser = false): void {
    this.t = { ...t };
    this.onChange(immediate, byUser);
  }

  fit(byUser = false): void {
    if (!this.content) return;
    const { width, height } = this.size();
    this.set(fitTransform(this.content, width, height), false, byUser);
  }

  zoomBy(factor: number, byUser = false): void {
    const { width, height } = this.size();
    this.set(zoomAround(this.t, factor, width / 2, height / 2), false, byUser);
  }

  panBy(dx: number, dy: number, byUser = false): void {
    this.set({ ...this.t, x: this.t.x + dx, y: this.t.y + dy }, false, byUser);
  }

  centreOn(x: number, y: number, k = this.t.k, immediate = true, byUser = false): void {
    const { width, height } = this.size();
    this.set(centreOn(x, y, this.t, width, height, k), immediate, byUser);
  }

  /** On every resize, what the user was looking at stays in view: the selection, else the centre. */
  private resized(): void {
    const now = this.size();
    const before = this.lastSize;
    this.lastSize = now;
    if (!before || (before.width === now.width && before.height === now.height)) return;
    const t = this.t;
    const keep = this.keep() ?? { x: (before.width / 2 - t.x) / t.k, y: (before.height / 2 - t.y) / t.k };
    this.set(centreOn(keep.x, keep.y, t, now.width, now.height), true);
  }

  /** The size last seen, so that the first resize after a show has a "before". */
  noteSize(): void {
    this.lastSize = this.size();
  }

  private bind(): void {
    const s = this.svg;
    s.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const r = s.getBoundingClientRect();
        const factor = Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015));
        this.set(zoomAround(this.t, factor, e.clientX - r.left, e.clientY - r.top), false, true);
      },
      { passive: false },
    );
    s.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      this.drag = { x: e.clientX, y: e.clientY, t: { ...this.t }, moved: false };
    });
    s.addEventListener("pointermove", (e) => {
      const d = this.drag;
      if (!d) return;
      const dx = e.clientX - d.x;
      const dy = e.clientY - d.y;
      if (!d.moved && Math.hypot(dx, dy) < 4) return;
      if (!d.moved) s.setPointerCapture(e.pointerId);
      d.moved = true;
      this.set({ ...d.t, x: d.t.x + dx, y: d.t.y + dy }, false, true);
    });
    const endDrag = (): void => {
      if (this.drag?.moved) this.suppressClick = true;
      this.drag = null;
    };
    s.addEventListener("pointerup", endDrag);
    s.addEventListener("pointercancel", endDrag);
    s.addEventListener("keydown", (e) => {
      if (e.target !== s && (e.key === "Enter" || e.key === " ")) return;
      const step = 60;
      const keys: Record<string, () => void> = {
        ArrowLeft: () => this.panBy(step, 0, true),
        ArrowRight: () => this.panBy(-step, 0, true),
        ArrowUp: () => this.panBy(0, step, true),
        ArrowDown: () => this.panBy(0, -step, true),
        "+": () => this.zoomBy(1.25, true),
        "=": () => this.zoomBy(1.25, true),
        "-": () => this.zoomBy(0.8, true),
        "0": () => this.fit(true),
      };
      const action = keys[e.key];
      if (action && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        action();
      }
    });
  }
}
