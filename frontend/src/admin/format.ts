export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MB`;
  return `${(n / (1 << 30)).toFixed(2)} GB`;
}

export function when(unixSeconds: number | null | undefined, lang: string): string {
  if (!unixSeconds) return "";
  return new Date(unixSeconds * 1000).toLocaleString(lang === "zh" ? "zh-CN" : "en");
}

export function num(x: number | null | undefined, digits = 0): string {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return x.toLocaleString(undefined, { maximumFractionDigits: digits });
}

/** An ISO date-time (as the admin routes return them), in the reader's language. */
export function whenIso(iso: string | null | undefined, lang: string): string {
  if (!iso) return "";
  return new Date(iso).toLocaleString(lang === "zh" ? "zh-CN" : "en");
}

/** The first 8 characters of an id (the full one goes in a title). */
export function short(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : "";
}
