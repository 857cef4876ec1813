// A thin wrapper over uPlot (~50 kB): line charts (loss) and bar charts (histograms, or
// named categories such as evaluation criteria: `xNames` labels x = 0, 1, 2…).
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

interface Props {
  title: string;
  x: number[];
  series: { label: string; values: number[] }[];
  kind?: "line" | "bars";
  xLabel?: string;
  yLabel?: string;
  height?: number;
  xNames?: string[];
  yRange?: [number, number];
}

export function Chart({ title, x, series, kind = "line", xLabel, yLabel, height = 240, xNames, yRange }: Props) {
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const el = box.current;
    if (!el || typeof uPlot !== "function" || x.length === 0) return;
    const bars = kind === "bars" && uPlot.paths?.bars ? uPlot.paths.bars({ size: [0.9, 60] }) : undefined;
    const plot = new uPlot(
      {
        width: Math.max(280, el.clientWidth || 600),
        height,
        scales: {
          x: xNames ? { time: false, range: [-0.5, xNames.length - 0.5] } : { time: false },
          ...(yRange ? { y: { range: yRange } } : {}),
        },
        axes: [
          xNames
            ? {
                label: xLabel,
                splits: () => xNames.map((_, i) => i),
                values: (_u, ticks) => ticks.map((i) => xNames[i] ?? ""),
              }
            : { label: xLabel },
          { label: yLabel },
        ],
        legend: { show: series.length > 1 },
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: "#0b5cad",
            fill: kind === "bars" ? "rgba(11,92,173,0.35)" : undefined,
            width: kind === "bars" ? 1 : 2,
            paths: bars,
            points: { show: kind === "line" && x.length < 40 },
          })),
        ],
      },
      [x, ...series.map((s) => s.values)],
      el,
    );
    const resize = () => plot.setSize({ width: Math.max(280, el.clientWidth), height });
    const observer = typeof ResizeObserver === "function" ? new ResizeObserver(resize) : null;
    observer?.observe(el);
    return () => {
      observer?.disconnect();
      plot.destroy();
    };
  }, [x, series, kind, xLabel, yLabel, height, xNames, yRange]);

  return <div className="chart" ref={box} role="img" aria-label={title} />;
}
