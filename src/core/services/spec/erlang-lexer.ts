// The tokenizer of the Erlang term parser (erlang.ts): atoms, quoted atoms, variables (refused by
// the parser), strings with every Erlang escape, char literals, integers (bases, `_` separators),
// floats, punctuation, whitespace and `%` comments. Errors carry the offset they happened at.

export type TokKind = 'atom' | 'qatom' | 'var' | 'string' | 'char' | 'integer' | 'float' | 'punct' | 'eof';
export interface Token {
  kind: TokKind;
  /** punct: the symbol; atom/var: the name; strings: the decoded text. */
  text: string;
  num?: number;
  start: number;
  end: number;
}

export class SyntaxErr extends Error {
  constructor(readonly offset: number, message: string) {
    super(message);
  }
}

const PUNCT = ['#{', '=>', ':=', '<<', '>>', '{', '}', '[', ']', ',', '|', '.', '/', '-', '+'];
const ESCAPES: Record<string, number> = { b: 8, d: 127, e: 27, f: 12, n: 10, r: 13, s: 32, t: 9, v: 11 };

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
export const isSpace = (c: string): boolean => c.charCodeAt(0) <= 32 || c === '\u00a0';
const isNameChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_@\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff]/.test(c);
const isAtomStart = (c: string): boolean => /[a-z\u00df-\u00f6\u00f8-\u00ff]/.test(c);
const isVarStart = (c: string): boolean => /[A-Z_\u00c0-\u00d6\u00d8-\u00de]/.test(c);

export function show(t: Token): string {
  switch (t.kind) {
    case 'eof': return 'end of file';
    case 'punct': return `'${t.text}'`;
    case 'string': return 'a string';
    case 'var': return `variable ${t.text}`;
    default: return `'${t.text}'`;
  }
}

export class Lexer {
  private i = 0;
  constructor(private readonly s: string) {}

  next(): Token {
    const s = this.s;
    // Whitespace and % comments.
    for (;;) {
      const c = s[this.i];
      if (c === undefined) return { kind: 'eof', text: '', start: this.i, end: this.i };
      if (isSpace(c)) this.i++;
      else if (c === '%') while (this.i < s.length && s[this.i] !== '\n') this.i++;
      else break;
    }
    const start = this.i;
    const c = s[start] as string;
    const tok = (kind: TokKind, text: string, num?: number): Token => {
      const t: Token = { kind, text, start, end: this.i };
      if (num !== undefined) t.num = num;
      return t;
    };
    if (isDigit(c)) return this.number(start, tok);
    if (isAtomStart(c) || isVarStart(c)) {
      while (isNameChar(s[this.i])) this.i++;
      return tok(isAtomStart(c) ? 'atom' : 'var', s.slice(start, this.i));
    }
    if (c === "'" || c === '"') {
      const text = this.quoted(c, c === "'" ? 'quoted atom' : 'string');
      return tok(c === "'" ? 'qatom' : 'string', text);
    }
    if (c === '$') {
      this.i++;
      const ch = s[this.i];
      if (ch === undefined) throw new SyntaxErr(start, "expected a character after '$'");
      const code = ch === '\\' ? this.escape() : (this.i += ch.length, ch.codePointAt(0) ?? 0);
      return tok('char', String(code), code);
    }
    if (c === '#' && s[start + 1] !== '{') throw new SyntaxErr(start, "expected '{' after '#' (records are not supported; write a map #{…})");
    for (const p of PUNCT) {
      if (s.startsWith(p, start)) {
        this.i += p.length;
        return tok('punct', p);
      }
    }
    throw new SyntaxErr(start, `unexpected character '${c}'`);
  }

  private number(start: number, tok: (k: TokKind, t: string, n?: number) => Token): Token {
    const s = this.s;
    const digits = (ok: (ch: string | undefined) => boolean): string => {
      let out = '';
      while (ok(s[this.i]) || (s[this.i] === '_' && ok(s[this.i - 1]) && ok(s[this.i + 1]))) {
        if (s[this.i] !== '_') out += s[this.i];
        this.i++;
      }
      return out;
    };
    const int = digits(isDigit);
    if (s[this.i] === '#') {
      const base = Number(int);
      if (base < 2 || base > 36) throw new SyntaxErr(start, `${int}# is not a base (2 to 36)`);
      this.i++;
      const valid = (ch: string | undefined): boolean => ch !== undefined && /[0-9a-zA-Z]/.test(ch) && parseInt(ch, 36) < base;
      const body = digits(valid);
      if (body === '' || isNameChar(s[this.i])) throw new SyntaxErr(this.i, `invalid digit for base ${base}`);
      return this.integer(start, parseInt(body, base), tok);
    }
    if (s[this.i] === '.' && isDigit(s[this.i + 1])) {
      this.i++;
      let text = `${int}.${digits(isDigit)}`;
      if ((s[this.i] === 'e' || s[this.i] === 'E') && (isDigit(s[this.i + 1]) || (/[-+]/.test(s[this.i + 1] ?? '') && isDigit(s[this.i + 2])))) {
        text += 'e';
        this.i++;
        if (s[this.i] === '-' || s[this.i] === '+') text += s[this.i++];
        text += digits(isDigit);
      }
      if (isNameChar(s[this.i])) throw new SyntaxErr(this.i, `unexpected '${s[this.i] as string}' after a number`);
      return tok('float', text, Number(text));
    }
    if (isNameChar(s[this.i])) throw new SyntaxErr(this.i, `unexpected '${s[this.i] as string}' after a number`);
    return this.integer(start, Number(int), tok);
  }

  private integer(start: number, n: number, tok: (k: TokKind, t: string, n?: number) => Token): Token {
    if (!Number.isSafeInteger(n)) throw new SyntaxErr(start, 'integer too large');
    return tok('integer', String(n), n);
  }

  private quoted(q: string, what: string): string {
    const s = this.s;
    const start = this.i;
    this.i++;
    let out = '';
    for (;;) {
      const c = s[this.i];
      if (c === undefined) throw new SyntaxErr(start, `unterminated ${what}`);
      if (c === q) {
        this.i++;
        return out;
      }
      if (c === '\\') out += String.fromCodePoint(this.escape());
      else {
        out += c;
        this.i++;
      }
    }
  }

  /** At a backslash: decodes one escape sequence and returns its code point. */
  private escape(): number {
    const s = this.s;
    const at = this.i;
    this.i++;
    const c = s[this.i];
    if (c === undefined) throw new SyntaxErr(at, 'unterminated escape sequence');
    if (c >= '0' && c <= '7') {
      let oct = '';
      while (oct.length < 3 && s[this.i] !== undefined && (s[this.i] as string) >= '0' && (s[this.i] as string) <= '7') oct += s[this.i++];
      return parseInt(oct, 8);
    }
    this.i++;
    if (c === 'x') {
      if (s[this.i] === '{') {
        const close = s.indexOf('}', this.i);
        const hex = close < 0 ? '' : s.slice(this.i + 1, close);
        if (!/^[0-9a-fA-F]{1,6}$/.test(hex) || parseInt(hex, 16) > 0x10ffff) throw new SyntaxErr(at, 'invalid \\x{…} escape');
        this.i = close + 1;
        return parseInt(hex, 16);
      }
      const hex = s.slice(this.i, this.i + 2);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new SyntaxErr(at, 'invalid \\x escape: expected two hex digits or \\x{…}');
      this.i += 2;
      return parseInt(hex, 16);
    }
    if (c === '^') {
      const ctl = s[this.i];
      if (ctl === undefined || !/[A-Za-z@[\\\]^_?]/.test(ctl)) throw new SyntaxErr(at, 'invalid \\^ escape');
      this.i++;
      return ctl === '?' ? 127 : (ctl.charCodeAt(0) & 31);
    }
    const named = ESCAPES[c];
    if (named !== undefined) return named;
    // \' \" \\ and any other character stand for themselves.
    return c.codePointAt(0) ?? 0;
  }
}
