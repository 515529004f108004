// A long list drawn a window at a time (src/virtual.ts): rows of one fixed height, only those in view in the
// DOM. Used for a run's node list, timeline rows and event log, which have a row per node or event.

import { useCallback, useLayoutEffect, useRef, useState, type ReactNode, type UIEvent } from "react";
import { atEnd, rowWindow, type RowWindow } from "./virtual";

export interface VirtualListProps<T> {
  items: readonly T[];
  rowHeight: number;
  /** The row of `item` (an element of `rowHeight` px; it is placed by the list). */
  row: (item: T, index: number) => ReactNode;
  /** The key of `item`'s row. */
  rowKey: (item: T, index: number) => string;
  className?: string;
  testId?: string;
  /** Keep the last row in view as rows are added, while the user has not scrolled up (a log). */
  follow?: boolean;
}

/** A scrolling list of `items` that puts only the rows in view into the DOM. */
export function VirtualList<T>({ items, rowHeight, row, rowKey, className, testId, follow }: VirtualListProps<T>) {
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 240 });
  const following = useRef(true);
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => setView((v) => (v.height === el.clientHeight || el.clientHeight === 0 ? v : { ...v, height: el.clientHeight }));
    measure();
    const observer = typeof ResizeObserver === "function" ? new ResizeObserver(measure) : null;
    observer?.observe(el);
    return () => observer?.disconnect();
  }, []);
  const total = items.length * rowHeight;
  useLayoutEffect(() => {
    const el = box.current;
    if (!follow || !el || !following.current) return;
    const top = Math.max(0, total - el.clientHeight);
    if (el.scrollTop !== top) el.scrollTop = top;
    setView((v) => (v.top === top ? v : { ...v, top }));
  }, [follow, total]);
  const w = rowWindow(view.top, view.height, rowHeight, items.length);
  const shown: ReactNode[] = [];
  for (let i = w.start; i < w.end; i++) {
    shown.push(
      <div key={rowKey(items[i], i)} className="vrow" style={{ position: "absolute", top: i * rowHeight, height: rowHeight, left: 0, right: 0 }}>
        {row(items[i], i)}
      </div>,
    );
  }
  return (
    <div
      ref={box}
      className={`vlist ${className ?? ""}`}
      data-testid={testId}
      data-rows={items.length}
      data-drawn={w.end - w.start}
      onScroll={(e) => {
        const el = e.currentTarget;
        following.current = atEnd(el.scrollTop, el.clientHeight, total);
        setView({ top: el.scrollTop, height: el.clientHeight || view.height });
      }}
    >
      <div style={{ position: "relative", height: total }}>{shown}</div>
    </div>
  );
}

/** The rows in view of `count` rows of `rowHeight` px inside the scrolling element `ref` (`offset` px below
 * its top), for a table: its rows cannot be placed one by one, so it draws the window between two spacer rows
 * of `padTop` and `padBottom` px. */
export function useRowWindow(count: number, rowHeight: number, offset = 0): { ref: React.RefObject<HTMLDivElement | null>; onScroll: (e: UIEvent<HTMLDivElement>) => void; window: RowWindow } {
  const ref = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 240 });
  useLayoutEffect(() => {
    const el = ref.current;
    if (el && el.clientHeight > 0) setView((v) => (v.height === el.clientHeight ? v : { ...v, height: el.clientHeight }));
  }, []);
  const onScroll = useCallback((e: UIEvent<HTMLDivElement>) => {
    const el = e.currentTarget;
    setView({ top: el.scrollTop, height: el.clientHeight || 240 });
  }, []);
  return { ref, onScroll, window: rowWindow(Math.max(0, view.top - offset), view.height, rowHeight, count) };
}
