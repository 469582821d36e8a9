// The per-turn ingest budget: at most `perTurn` jobs start in one event-loop turn, the rest start in
// later turns in arrival order, and results and errors reach their callers.
import { describe, expect, it } from 'vitest';
import { TurnBudget } from '../src/agent/turn-budget.ts';

/** Resolves on the next turn (after the current turn's setImmediate callbacks). */
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

describe('TurnBudget', () => {
  it('starts at most perTurn jobs per turn, in arrival order, and returns their results', async () => {
    const b = new TurnBudget(3);
    const started: number[] = [];
    let turn = 0;
    const turns: number[] = [];
    const ticking = (async () => {
      while (turn < 20) {
        await nextTurn();
        turn++;
      }
    })();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        b.run(async () => {
          started.push(i);
          turns.push(turn);
          return i * 2;
        }),
      ),
    );
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => i * 2));
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Jobs per turn never exceed the budget.
    const perTurn = new Map<number, number>();
    for (const t of turns) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(3);
    expect(perTurn.size).toBeGreaterThanOrEqual(4);
    expect(b.backlog).toBe(0);
    await ticking;
  });

  it('passes a rejected job to its caller and goes on with the others', async () => {
    const b = new TurnBudget(1);
    const a = b.run(async () => {
      throw new Error('bad input');
    });
    const c = b.run(async () => 'ok');
    await expect(a).rejects.toThrow('bad input');
    await expect(c).resolves.toBe('ok');
  });

  it('gives a fresh budget once a turn passed', async () => {
    const b = new TurnBudget(2);
    let ran = 0;
    await Promise.all([b.run(async () => ran++), b.run(async () => ran++)]);
    await nextTurn();
    await nextTurn();
    // Both run at once (synchronously inside run()), not deferred.
    let sync = 0;
    void b.run(async () => sync++);
    void b.run(async () => sync++);
    expect(sync).toBe(2);
    expect(ran).toBe(2);
  });
});
