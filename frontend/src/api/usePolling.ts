// One way to follow something that changes on the server (a run, a job, a dataset's report):
// load it, then load it again after `every(data)` ms until that says stop (null).
import { useCallback, useEffect, useRef, useState } from "react";

export interface PollingOptions<T> {
  /** Milliseconds until the next load after `data` arrived, or null to stop polling. */
  every: (data: T) => number | null;
  /** Wait after a failed load before trying again (default 5 s). */
  retryAfterError?: number;
  /** Loads in all before polling stops whatever `every` says (a reload starts again). */
  maxLoads?: number;
}

export interface Polled<T> {
  /** The latest data; null until the first load of this key arrived. */
  data: T | null;
  /** The last load's failure; cleared by the next success. */
  error: Error | null;
  /** Load now (e.g. after an action or a pushed event); polling goes on from there. */
  refresh: () => void;
  /** Show data the page got another way (the answer of an action); polling goes on from it
   * (a run that an action made active again is followed again). */
  setData: (data: T) => void;
}

interface State<T> {
  key: string;
  data: T | null;
  error: Error | null;
}

/** Poll `load` for `key`; a new key starts again from nothing, and loads of an earlier key
 * that arrive late are dropped. `load` and `options` may change between renders (the latest
 * are used); only `key` restarts. */
export function usePolling<T>(key: string, load: () => Promise<T>, options: PollingOptions<T>): Polled<T> {
  const [state, setState] = useState<State<T>>({ key, data: null, error: null });
  const latest = useRef({ load, options });
  const tick = useRef<() => void>(() => undefined);
  const adopt = useRef<(data: T) => void>(() => undefined);
  useEffect(() => {
    latest.current = { load, options };
  });

  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let loads = 0;
    let seq = 0; // only the newest load (or adopted data) schedules the next one
    const schedule = (delay: number | null) => {
      if (delay !== null && ++loads < (latest.current.options.maxLoads ?? Infinity)) {
        timer = setTimeout(() => void run(), delay);
      }
    };
    const run = async () => {
      const mine = ++seq;
      clearTimeout(timer);
      const { load: fetchIt, options: opts } = latest.current;
      let delay: number | null;
      try {
        const data = await fetchIt();
        if (!live || mine !== seq) return;
        setState({ key, data, error: null });
        delay = latest.current.options.every(data);
      } catch (e) {
        if (!live || mine !== seq) return;
        const error = e instanceof Error ? e : new Error(String(e));
        setState((s) => ({ key, data: s.key === key ? s.data : null, error }));
        delay = opts.retryAfterError ?? 5000;
      }
      schedule(delay);
    };
    tick.current = () => void run();
    adopt.current = (data) => {
      ++seq; // a load in flight is older than this
      clearTimeout(timer);
      setState({ key, data, error: null });
      schedule(latest.current.options.every(data));
    };
    void run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [key]);

  const refresh = useCallback(() => tick.current(), []);
  const setData = useCallback((data: T) => adopt.current(data), []);
  const current = state.key === key;
  return { data: current ? state.data : null, error: current ? state.error : null, refresh, setData };
}
