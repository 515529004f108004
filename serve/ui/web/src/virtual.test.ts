import { describe, expect, it } from "vitest";
import { atEnd, rowWindow, scrollToShow } from "./virtual";

describe("virtualised lists", () => {
  it("draws the rows in view and a margin, and keeps the full height with padding", () => {
    // 1,000 rows of 18 px in a 180 px viewport scrolled to row 500.
    const w = rowWindow(500 * 18, 180, 18, 1000, 5);
    expect(w).toEqual({ start: 495, end: 516, padTop: 495 * 18, padBottom: (1000 - 516) * 18 });
    expect(w.end - w.start).toBeLessThan(25);
    expect(w.padTop + (w.end - w.start) * 18 + w.padBottom).toBe(1000 * 18);
    expect(rowWindow(0, 180, 18, 3)).toEqual({ start: 0, end: 3, padTop: 0, padBottom: 0 });
    expect(rowWindow(1e6, 180, 18, 1000, 0).end).toBe(1000); // scrolled past the end (rows removed)
    expect(rowWindow(0, 180, 18, 0).end).toBe(0);
  });

  it("scrolls a row into view and knows when a log is at its end", () => {
    expect(scrollToShow(0, 180, 18, 50)).toBe(51 * 18 - 180);
    expect(scrollToShow(900, 180, 18, 10)).toBe(180);
    expect(scrollToShow(0, 180, 18, 2)).toBe(0);
    expect(atEnd(820, 180, 1000)).toBe(true);
    expect(atEnd(500, 180, 1000)).toBe(false);
  });
});
