// Which rows of a long list to draw (pure; tested in virtual.test.ts): a run of 1,000+ nodes has as many rows
// in its node list, timeline and event log, and only the few in view (plus a margin) become DOM elements.

/** The rows `[start, end)` to draw, and the blank space above and below them. */
export interface RowWindow {
  start: number;
  end: number;
  padTop: number;
  padBottom: number;
}

/** The rows of `count` rows of `rowHeight` px that a viewport of `height` px scrolled to `scrollTop` shows,
 * with `overscan` more on each side (so a quick scroll does not flash blank rows). */
export function rowWindow(scrollTop: number, height: number, rowHeight: number, count: number, overscan = 8): RowWindow {
  if (count <= 0 || rowHeight <= 0) return { start: 0, end: 0, padTop: 0, padBottom: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const shown = Math.ceil(Math.max(height, rowHeight) / rowHeight) + 1;
  const start = Math.max(0, Math.min(first, count - 1) - overscan);
  const end = Math.min(count, first + shown + overscan);
  return { start, end, padTop: start * rowHeight, padBottom: (count - end) * rowHeight };
}

/** Where to scroll so that row `index` is in view (unchanged when it already is). */
export function scrollToShow(scrollTop: number, height: number, rowHeight: number, index: number): number {
  const top = index * rowHeight;
  if (top < scrollTop) return top;
  if (top + rowHeight > scrollTop + height) return top + rowHeight - height;
  return scrollTop;
}

/** True when a list scrolled to `scrollTop` shows its last row (a log that follows new rows stays there). */
export function atEnd(scrollTop: number, height: number, total: number, slack = 4): boolean {
  return scrollTop + height >= total - slack;
}
