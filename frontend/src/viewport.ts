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
