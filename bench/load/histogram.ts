/**
 * A latency histogram in microseconds: exact below 64 µs, then 32 buckets per power of two (about
 * 3 % precision), so that workers can add theirs up by index and percentiles stay cheap.
 */
const LINEAR = 64;
const SUB_BUCKETS = 32;
const MAX_EXPONENT = 40;
export const HISTOGRAM_SIZE = LINEAR + (MAX_EXPONENT - 6) * SUB_BUCKETS;

export interface HistogramData {
  counts: number[];
  count: number;
  maxUs: number;
}

function bucketOf(us: number): number {
  const value = us < 0 ? 0 : Math.floor(us);
  if (value < LINEAR) return value;
  const exponent = Math.min(31 - Math.clz32(Math.min(value, 2 ** 31 - 1)), MAX_EXPONENT - 1);
  const sub = Math.floor(value / 2 ** (exponent - 5)) & (SUB_BUCKETS - 1);
  return Math.min(LINEAR + (exponent - 6) * SUB_BUCKETS + sub, HISTOGRAM_SIZE - 1);
}

/** The middle of a bucket, in µs. */
function middleOf(index: number): number {
  if (index < LINEAR) return index;
  const exponent = Math.floor((index - LINEAR) / SUB_BUCKETS) + 6;
  const sub = (index - LINEAR) % SUB_BUCKETS;
  const width = 2 ** (exponent - 5);
  return (SUB_BUCKETS + sub) * width + width / 2;
}

export class Histogram {
  counts = new Array<number>(HISTOGRAM_SIZE).fill(0);
  count = 0;
  maxUs = 0;

  record(us: number): void {
    const index = bucketOf(us);
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.count++;
    if (us > this.maxUs) this.maxUs = us;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.maxUs = 0;
  }

  toData(): HistogramData {
    return { counts: this.counts.slice(), count: this.count, maxUs: this.maxUs };
  }

  add(data: HistogramData): void {
    for (let i = 0; i < HISTOGRAM_SIZE; i++) {
      this.counts[i] = (this.counts[i] ?? 0) + (data.counts[i] ?? 0);
    }
    this.count += data.count;
    if (data.maxUs > this.maxUs) this.maxUs = data.maxUs;
  }

  /** The q-quantile (0..1) in µs, or undefined when empty. */
  quantile(q: number): number | undefined {
    if (this.count === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_SIZE; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return Math.min(middleOf(i), this.maxUs);
    }
    return this.maxUs;
  }
}
