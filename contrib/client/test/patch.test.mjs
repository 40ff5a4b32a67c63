// The RFC 6902 applier of pgpush-client: every operation, RFC 6901 pointers,
// the RFC's own examples, and atomicity (a failing op changes nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPatch, parsePointer, deepEqual, PatchError } from '../src/pgpush-client.js';

const frozen = (v) => {
  if (v && typeof v === 'object') { Object.values(v).forEach(frozen); Object.freeze(v); }
  return v;
};
const clone = (v) => JSON.parse(JSON.stringify(v));

test('pointers: "", escapes ~0 and ~1, and malformed ones', () => {
  assert.deepEqual(parsePointer(''), []);
  assert.deepEqual(parsePointer('/'), ['']);
  assert.deepEqual(parsePointer('/a~1b/m~0n/0'), ['a/b', 'm~n', '0']);
  assert.deepEqual(parsePointer('/~01'), ['~1'], '~01 is "~1", not "/"');
  assert.throws(() => parsePointer('a'), PatchError);
  assert.throws(() => parsePointer('/a~2'), PatchError);
  assert.throws(() => parsePointer('/a~'), PatchError);
});

// RFC 6902 appendix A, as [doc, patch, result or null for an error].
const RFC = [
  ['A.1 add an object member', { foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux' }], { baz: 'qux', foo: 'bar' }],
  ['A.2 add an array element', { foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }], { foo: ['bar', 'qux', 'baz'] }],
  ['A.3 remove an object member', { baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }], { foo: 'bar' }],
  ['A.4 remove an array element', { foo: ['bar', 'qux', 'baz'] }, [{ op: 'remove', path: '/foo/1' }], { foo: ['bar', 'baz'] }],
  ['A.5 replace a value', { baz: 'qux', foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo' }], { baz: 'boo', foo: 'bar' }],
  ['A.6 move a value', { foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } },
    [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }],
    { foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } }],
  ['A.7 move an array element', { foo: ['all', 'grass', 'cows', 'eat'] }, [{ op: 'move', from: '/foo/1', path: '/foo/3' }],
    { foo: ['all', 'cows', 'eat', 'grass'] }],
  ['A.8 test success', { baz: 'qux', foo: ['a', 2, 'c'] },
    [{ op: 'test', path: '/baz', value: 'qux' }, { op: 'test', path: '/foo/1', value: 2 }], { baz: 'qux', foo: ['a', 2, 'c'] }],
  ['A.9 test error', { baz: 'qux' }, [{ op: 'test', path: '/baz', value: 'bar' }], null],
  ['A.10 add a nested member object', { foo: 'bar' }, [{ op: 'add', path: '/child', value: { grandchild: {} } }],
    { foo: 'bar', child: { grandchild: {} } }],
  ['A.11 ignore unrecognized elements', { foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux', xyz: 123 }], { foo: 'bar', baz: 'qux' }],
  ['A.12 add to a nonexistent target', { foo: 'bar' }, [{ op: 'add', path: '/baz/bat', value: 'qux' }], null],
  ['A.14 ~ escape ordering', { '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: 10 }], { '/': 9, '~1': 10 }],
  ['A.15 comparing strings and numbers', { '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: '10' }], null],
  ['A.16 add an array value', { foo: ['bar'] }, [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }], { foo: ['bar', ['abc', 'def']] }],
];
for (const [name, doc, patch, want] of RFC) {
  test(`RFC 6902 ${name}`, () => {
    const before = clone(doc);
    frozen(doc);
    if (want === null) assert.throws(() => applyPatch(doc, patch), PatchError);
    else assert.deepEqual(applyPatch(doc, patch), want);
    assert.deepEqual(doc, before, 'the input is untouched');
  });
}

test('add: "-" appends, index = length appends, beyond fails; "" replaces the root', () => {
  assert.deepEqual(applyPatch({ a: [1] }, [{ op: 'add', path: '/a/1', value: 2 }]), { a: [1, 2] });
  assert.deepEqual(applyPatch([1], [{ op: 'add', path: '/-', value: 2 }]), [1, 2]);
  assert.throws(() => applyPatch({ a: [1] }, [{ op: 'add', path: '/a/2', value: 2 }]), PatchError);
  assert.throws(() => applyPatch({ a: [1] }, [{ op: 'add', path: '/a/01', value: 2 }]), /not an array index/);
  assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'add', path: '', value: { b: 2 } }]), { b: 2 });
  assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'replace', path: '', value: [3] }]), [3]);
  assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'add', path: '/a', value: 5 }]), { a: 5 }, 'add replaces a member');
});

test('remove / replace need an existing target; "-" is not one', () => {
  assert.throws(() => applyPatch({ a: 1 }, [{ op: 'remove', path: '/b' }]), /no member/);
  assert.throws(() => applyPatch({ a: [1] }, [{ op: 'remove', path: '/a/1' }]), /out of bounds/);
  assert.throws(() => applyPatch({ a: [1] }, [{ op: 'remove', path: '/a/-' }]), PatchError);
  assert.throws(() => applyPatch({ a: 1 }, [{ op: 'replace', path: '/b', value: 1 }]), PatchError);
  assert.throws(() => applyPatch({ a: 1 }, [{ op: 'remove', path: '' }]), PatchError);
});

test('replace keeps the member in its place', () => {
  assert.deepEqual(Object.keys(applyPatch({ a: 1, b: 2, c: 3 }, [{ op: 'replace', path: '/b', value: 9 }])), ['a', 'b', 'c']);
});

test('move: into its own child fails, onto itself is a no-op; copy copies deeply', () => {
  assert.throws(() => applyPatch({ a: { b: {} } }, [{ op: 'move', from: '/a', path: '/a/b/c' }]), /own children/);
  assert.deepEqual(applyPatch({ a: { b: 1 } }, [{ op: 'move', from: '/a', path: '/a' }]), { a: { b: 1 } });
  const out = applyPatch({ a: { x: [1] } }, [{ op: 'copy', from: '/a', path: '/b' }, { op: 'add', path: '/b/x/-', value: 2 }]);
  assert.deepEqual(out, { a: { x: [1] }, b: { x: [1, 2] } }, 'changing the copy leaves the source alone');
  assert.throws(() => applyPatch({ a: 1 }, [{ op: 'copy', from: '/nope', path: '/b' }]), PatchError);
});

test('array indexes shift as operations apply, in order (removals highest first)', () => {
  const doc = { s: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] };
  const out = applyPatch(doc, [{ op: 'remove', path: '/s/9' }, { op: 'remove', path: '/s/3' }, { op: 'add', path: '/s/0', value: 'new' }]);
  assert.deepEqual(out.s, ['new', 0, 1, 2, 4, 5, 6, 7, 8]);
});

test('atomic: a failing operation after good ones leaves the document untouched', () => {
  const doc = frozen({ version: 1, summary: { sales: 1 }, list: [{ id: 1 }, { id: 2 }] });
  const before = clone(doc);
  let err;
  try {
    applyPatch(doc, [
      { op: 'replace', path: '/version', value: 2 },
      { op: 'remove', path: '/list/0' },
      { op: 'add', path: '/summary/new', value: 1 },
      { op: 'test', path: '/summary/sales', value: 99 },
    ]);
  } catch (e) { err = e; }
  assert.ok(err instanceof PatchError);
  assert.equal(err.index, 3, 'the error names the failing operation');
  assert.deepEqual(doc, before);
});

test('unchanged subtrees are shared, changed paths are new objects', () => {
  const doc = frozen({ a: { x: 1 }, b: { y: [1, 2] } });
  const out = applyPatch(doc, [{ op: 'replace', path: '/b/y/0', value: 5 }]);
  assert.equal(out.a, doc.a);
  assert.notEqual(out.b, doc.b);
  assert.deepEqual(out, { a: { x: 1 }, b: { y: [5, 2] } });
});

test('malformed operations are PatchErrors', () => {
  for (const bad of [null, 3, [], { op: 'add', path: '/a' }, { op: 'frob', path: '/a' }, { op: 'add', value: 1 },
    { op: 'move', path: '/a' }, { op: 'test', path: '/a' }]) {
    assert.throws(() => applyPatch({ a: 1 }, [bad]), PatchError, JSON.stringify(bad));
  }
  assert.throws(() => applyPatch({}, { op: 'add' }), PatchError);
});

test('__proto__ is a member like any other, never the prototype', () => {
  const out = applyPatch({}, [{ op: 'add', path: '/__proto__', value: { polluted: true } }]);
  assert.equal(({}).polluted, undefined);
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.deepEqual(Object.keys(out), ['__proto__']);
  const out2 = applyPatch(JSON.parse('{"__proto__": {"a": 1}}'), [{ op: 'replace', path: '/__proto__/a', value: 2 }]);
  assert.equal(out2.__proto__.a, 2); // eslint-disable-line no-proto
  assert.equal(({}).a, undefined);
});

test('deepEqual compares JSON values', () => {
  assert.ok(deepEqual({ a: [1, { b: null }] }, { a: [1, { b: null }] }));
  assert.ok(!deepEqual({ a: 1 }, { a: 1, b: undefined }));
  assert.ok(!deepEqual([1], { 0: 1 }));
  assert.ok(!deepEqual(1, '1'));
});

// A keyed diff as docs/protocol.md's patch rule describes it, on a
// dashboard-shaped document: one new sale, today's row, the summary.
test('a patch like the server\'s for one sale yields exactly the next document', () => {
  const sale = (id) => ({ id, productId: 1, sku: 'S', product: 'P', quantity: 1, amount: 2.5, customerName: null, customerEmail: null, soldAt: 't' });
  const a = frozen({ version: 10, generatedAt: 'g1', reason: 'timer', summary: { salesToday: 1 },
    recentSales: [9, 8, 7, 6, 5, 4, 3, 2, 1, 0].map(sale), salesByDay: [{ day: 'd1', sales: 1 }, { day: 'd2', sales: 1 }] });
  const b = { version: 11, generatedAt: 'g2', reason: 'notify:sales', summary: { salesToday: 2 },
    recentSales: [10, 9, 8, 7, 6, 5, 4, 3, 2, 1].map(sale), salesByDay: [{ day: 'd1', sales: 1 }, { day: 'd2', sales: 2 }] };
  const patch = [
    { op: 'replace', path: '/version', value: 11 },
    { op: 'replace', path: '/generatedAt', value: 'g2' },
    { op: 'replace', path: '/reason', value: 'notify:sales' },
    { op: 'replace', path: '/summary', value: { salesToday: 2 } },
    { op: 'remove', path: '/recentSales/9' },
    { op: 'add', path: '/recentSales/0', value: sale(10) },
    { op: 'replace', path: '/salesByDay/1/sales', value: 2 },
  ];
  assert.deepEqual(applyPatch(a, patch), b);
});
