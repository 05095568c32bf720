// Tests for the Erlang term parser: every syntax element bc_gitops spec files use, the JS view,
// positions of fields, and syntax errors at their exact line:col.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseErlangTerm, proplistToMap, termToJS } from './erlang.js';
import type { ErlangLocator } from './erlang.js';

function value(text: string): unknown {
  const r = parseErlangTerm(text);
  if ('error' in r) return assert.fail(`${r.error.line}:${r.error.col}: ${r.error.message}`);
  return r.value;
}

function locator(text: string): ErlangLocator {
  const r = parseErlangTerm(text);
  if ('error' in r) return assert.fail(r.error.message);
  return r.locator;
}

function error(text: string): string {
  const r = parseErlangTerm(text);
  if (!('error' in r)) return assert.fail(`expected an error, got ${JSON.stringify(r.value)}`);
  return `${r.error.line}:${r.error.col}: ${r.error.message}`;
}

test('atoms: plain, quoted, booleans, undefined/nil', () => {
  assert.deepEqual(value('[my_web_app, npm, a@b, aB9, \'my-app\', \'Hello World\', \'\', true, false, undefined, nil, \'true\'].'),
    ['my_web_app', 'npm', 'a@b', 'aB9', 'my-app', 'Hello World', '', true, false, null, null, true]);
});

test('binaries: strings, empty, /utf8, bytes, several segments', () => {
  assert.deepEqual(value('[<<"1.0.0">>, <<>>, << >>, <<"héllo"/utf8>>, <<104, 105>>, <<"a", "b" "c", $d>>, <<"x"/binary>>].'),
    ['1.0.0', '', '', 'héllo', 'hi', 'abcd', 'x']);
});

test('strings and quoted atoms: every escape, adjacent strings, newlines', () => {
  assert.deepEqual(value(String.raw`["a\"b", "tab\there", "\n\r\s\e\d\b\f\v", "\101\7\x41\x{1F600}", "\^a\^Z", "q\'\\", 'it\'s', "ab" "cd", ""].`), [
    'a"b', 'tab\there', '\n\r \x1b\x7f\b\f\v', 'A\x07A😀', '\x01\x1a', "q'\\", "it's", 'abcd', '',
  ]);
  assert.deepEqual(value('"line1\nline2".'), 'line1\nline2');
});

test('numbers: integers, bases, separators, signs, chars, floats', () => {
  assert.deepEqual(value('[0, 42, -7, - 7, +3, 16#FF, 16#ff, 2#1010, 36#Z, 1_000_000, 16#FF_FF, $a, $\\n, -$a, 1.5, -0.25, 2.5e3, 1.0E-2, 6.02e+23].'),
    [0, 42, -7, -7, 3, 255, 255, 10, 35, 1_000_000, 0xffff, 97, 10, -97, 1.5, -0.25, 2500, 0.01, 6.02e23]);
  assert.equal(value('8080.'), 8080);
  assert.equal(value('1.0.'), 1);
});

test('lists, tuples, maps, nesting, comments and whitespace', () => {
  const text = `%% A spec
#{ % comment after the brace
   list => [1, [2, []], {}],
   tuple => {ok, <<"x">>, {nested, 1}},
   empty => #{},
   <<"bin key">> => 1, "str key" => 2, 'q key' => 3, 7 => seven,
   nested => #{a => #{b => [#{c => d}]}}
}.
%% trailing comment`;
  assert.deepEqual(value(text), {
    list: [1, [2, []], []],
    tuple: ['ok', 'x', ['nested', 1]],
    empty: {},
    'bin key': 1, 'str key': 2, 'q key': 3, 7: 'seven',
    nested: { a: { b: [{ c: 'd' }] } },
  });
  assert.deepEqual(value('#{}.'), {});
  assert.deepEqual(value('\t#{a=>1}.\r\n'), { a: 1 });
});

test('positions: a map field at its key, a list item at the item, a missing field at its parent', () => {
  const loc = locator(`#{
    name => web,
    health => #{port => 8080,
                path => <<"/h">>},
    depends_on => [db,   cache]
}.`);
  assert.deepEqual(loc.locate(['name']), { line: 2, col: 5 });
  assert.deepEqual(loc.locate(['health', 'path']), { line: 4, col: 17 });
  assert.deepEqual(loc.locate(['depends_on', 1]), { line: 5, col: 26 });
  assert.deepEqual(loc.locate(['health', 'nope']), { line: 3, col: 5 });
  assert.deepEqual(loc.locate(['missing']), { line: 1, col: 1 });
  assert.deepEqual(loc.locate([]), { line: 1, col: 1 });
});

test('a proplist reads as the equivalent map; other lists stay lists', () => {
  const r = parseErlangTerm('[{name, web}, {version, <<"1">>}].');
  if ('error' in r) return assert.fail(r.error.message);
  assert.deepEqual(termToJS(proplistToMap(r.term)), { name: 'web', version: '1' });
  const other = parseErlangTerm('[{a, 1}, b].');
  if ('error' in other) return assert.fail(other.error.message);
  assert.deepEqual(termToJS(proplistToMap(other.term)), [['a', 1], 'b']);
});

test('syntax errors at their exact line:col', () => {
  assert.equal(error(''), "1:1: the file is empty: expected a map #{…} followed by '.'");
  assert.equal(error('%% only a comment\n'), "1:1: the file is empty: expected a map #{…} followed by '.'");
  assert.equal(error('#{a => 1}\n'), "1:10: missing final '.'");
  assert.equal(error('#{\n  a => 1\n}   %% no dot\n'), "3:2: missing final '.'");
  assert.equal(error('#{\n  name web\n}.'), "2:8: expected '=>' after map key, found 'web'");
  assert.equal(error('#{a := 1}.'), "1:5: expected '=>' after map key (':=' only updates an existing map)");
  assert.equal(error('#{\n  v => <<"1.0.0",\n  x => 1}.'), '3:3: unexpected \'x\' in binary: expected a string or a byte');
  assert.equal(error('#{v => <<"1.0.0"}.'), "1:17: unterminated binary: expected ',' or '>>', found '}'");
  assert.equal(error('#{v => <<"1.0.0"'), '1:8: unterminated binary');
  assert.equal(error('#{v => "abc}.\n'), '1:8: unterminated string');
  assert.equal(error("#{v => 'abc}.\n"), '1:8: unterminated quoted atom');
  assert.equal(error('#{a => 1,\n  b => 2\n'), "1:1: unterminated map: expected '}'");
  assert.equal(error('[1, 2'), "1:1: unterminated list: expected ']'");
  assert.equal(error('{a, b'), "1:1: unterminated tuple: expected '}'");
  assert.equal(error('#{a => 1 b => 2}.'), "1:10: expected ',' or '}' in map, found 'b'");
  assert.equal(error('#{a => 1, a => 2}.'), '1:11: duplicate key a (first at 1:3)');
  assert.equal(error('#{{a} => 1}.'), '1:3: a map key must be an atom, a binary, a string or a number');
  assert.equal(error('#{name => Web}.'), "1:11: unexpected variable Web: a spec file holds values only (quote it as an atom: 'Web', or write <<\"Web\">>)");
  assert.equal(error('#rec{a = 1}.'), "1:1: expected '{' after '#' (records are not supported; write a map #{…})");
  assert.equal(error('[a | b].'), "1:4: improper lists ('|') are not supported");
  assert.equal(error('#{a => 1}. #{b => 2}.'), "1:12: a spec file holds one term: unexpected text after the final '.'");
  assert.equal(error('#{a => 1}.x'), "1:11: expected whitespace or end of file after the final '.'");
  assert.equal(error('#{a => 1};'), "1:10: unexpected character ';'");
  assert.equal(error('#{a => 12ab}.'), "1:10: unexpected 'a' after a number");
  assert.equal(error('#{a => 2#102}.'), '1:12: invalid digit for base 2');
  assert.equal(error('#{a => 99999999999999999999}.'), '1:8: integer too large');
  assert.equal(error('#{a => <<256>>}.'), '1:10: binary segment 256 is not a byte (0 to 255)');
  assert.equal(error('#{a => <<"x"/utf16>>}.'), '1:14: binary segment type /utf16 is not supported (use /utf8 or none)');
  assert.equal(error('#{a => "\\x4"}.'), '1:9: invalid \\x escape: expected two hex digits or \\x{…}');
  assert.equal(error('#{a => - b}.'), "1:10: expected a number after '-'");
  assert.equal(error('#{a => }.'), "1:8: unexpected '}': expected a value");
});
