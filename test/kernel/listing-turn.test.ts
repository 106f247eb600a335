// One behaviour's listing per loop turn (lib/kernel/listing-turn.ts): a lone
// listing starts at once, the next one in the same turn only after the loop
// has had a turn to serve what came meanwhile.
import t from 'tap';
import { listingTurn } from '../../lib/kernel/listing-turn.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

t.test('the first listing of a turn waits for nothing', async (t) => {
  await turn(); // a fresh turn
  let served = false;
  setImmediate(() => (served = true)); // a request that came meanwhile
  await listingTurn();
  t.equal(served, false, 'started before the loop served anything else');
});

t.test('a second listing in the same turn waits until the loop has served what came meanwhile', async (t) => {
  await turn();
  await listingTurn();
  let served = false;
  setImmediate(() => (served = true));
  await listingTurn();
  t.equal(served, true, 'the loop turned between the two listings');
});

t.test('a loop of listings takes one turn each', async (t) => {
  await turn();
  const order: string[] = [];
  const lister = (async () => {
    for (let i = 0; i < 3; i++) {
      await listingTurn();
      order.push(`listing ${i}`);
    }
  })();
  const requests = (async () => {
    for (let i = 0; i < 3; i++) {
      await turn();
      order.push(`request ${i}`);
    }
  })();
  await Promise.all([lister, requests]);
  t.same(order.slice(0, 4), ['listing 0', 'request 0', 'listing 1', 'request 1'], 'interleaved, never two listings in a row');
});
