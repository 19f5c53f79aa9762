/**
 * Runs `work` over items with at most `limit` at a time; results keep the input order.
 *
 * On a failure no new item is started, and the promise rejects with the FIRST error only
 * after every item already started has settled. A caller that cleans up on rejection (removes
 * a temporary directory, releases the lock, exits) therefore never does so while another item
 * still has a container stopped or paused.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await work(items[i]!, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  });
  await Promise.allSettled(lanes);
  if (failure) throw failure.error;
  return results;
}
