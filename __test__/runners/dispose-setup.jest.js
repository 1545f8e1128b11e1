// The README's one-line setup for `await using` under Jest on Node.js 20 and 22.
Symbol.asyncDispose ??= Symbol.for('nodejs.asyncDispose')
