// One behaviour's listing per loop turn. A listing runs on the loop (the
// decision and its bound: lib/kernel/port.ts pins). The first in a turn runs
// at once, so a lone `cat` pays no hop; any other waits for a later turn, so
// a loop over every behaviour (`stats`, adoption) lets the requests that came
// meanwhile be served between two listings.
let listedThisTurn = false;

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

/** Resolves when this turn of the loop has no listing yet; the caller's listing is then its one. */
export async function listingTurn(): Promise<void> {
  while (listedThisTurn) await nextTurn();
  listedThisTurn = true;
  setImmediate(() => (listedThisTurn = false));
}
