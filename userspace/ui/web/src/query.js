// The query box's language: what a person types, turned into the `patterns` and `match_spec` of
// POST /api/captures (docs/ui.md, "The query box").
//
//   lists:sort/1 ets:lookup/2          patterns, Erlang form, separated by spaces or commas
//   Enum.map/2, MyApp.Repo             patterns, Elixir form (the daemon reads both)
//   orion_demo:, MyApp.Repo.           a whole module (what TAB leaves after a module name)
//   ets:lookup(data, _)                one function with argument patterns: pattern
//                                      ets:lookup/2 and match spec [{[data,'_'],[],[]}]
//   users:get(Id, nadia) when Id > 10  Erlang variables, guards (`,` and, `;` or)
//   Registry.dispatch(MyApp.Registry, t, _) when t in [:a, :b]    Elixir syntax
//
// parseQuery(text) -> {patterns: [...], matchSpec: '...' | ''}; a malformed query throws a
// QueryError whose message says what is wrong and where.

export class QueryError extends Error {
  constructor(message, position) {
    super(position === undefined ? message : `${message} (at character ${position + 1})`);
    this.position = position;
  }
}

const PUNCT = ['===', '!==', '=:=', '=/=', '==', '!=', '/=', '=<', '<=', '>=', '<', '>', '(', ')', '[', ']', '{', '}',
  ',', ';', '|', '+', '-', '*', '/', ':', '.'];

function tokenize(text) {
  const tokens = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) { ++i; continue; }
    const start = i;
    if (/[0-9]/.test(c)) {
      const m = /^[0-9][0-9_]*(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
      tokens.push({ type: 'number', text: m[0].replaceAll('_', ''), pos: start });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_@]*[?!]?/.exec(text.slice(i));
      tokens.push({ type: 'name', text: m[0], pos: start });
      i += m[0].length;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let value = '';
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\' && j + 1 < text.length) ++j;
        value += text[j++];
      }
      if (j >= text.length) throw new QueryError(`unterminated ${c === '"' ? 'string' : 'quoted atom'}`, start);
      tokens.push({ type: c === '"' ? 'string' : 'quoted', text: value, pos: start });
      i = j + 1;
    } else {
      const op = PUNCT.find((p) => text.startsWith(p, i));
      if (!op) throw new QueryError(`unexpected '${c}'`, i);
      tokens.push({ type: 'punct', text: op, pos: start });
      i += op.length;
    }
  }
  tokens.push({ type: 'end', text: '', pos: text.length });
  return tokens;
}

// An atom as Erlang prints it: bare when it is a lowercase name, quoted otherwise.
export function erlangAtom(name) {
  if (/^[a-z][A-Za-z0-9_@]*$/.test(name) && !RESERVED.has(name)) return name;
  return `'${name.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}
const RESERVED = new Set(['after', 'and', 'andalso', 'band', 'begin', 'bnot', 'bor', 'bsl', 'bsr', 'bxor',
  'case', 'catch', 'cond', 'div', 'end', 'fun', 'if', 'let', 'not', 'of', 'or', 'orelse', 'receive', 'rem',
  'try', 'when', 'xor']);

function erlangString(text) {
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

// Guard functions allowed in a match spec, by their name in either syntax.
const GUARD_FUNCTIONS = new Set(['is_atom', 'is_binary', 'is_bitstring', 'is_boolean', 'is_float',
  'is_function', 'is_integer', 'is_list', 'is_map', 'is_number', 'is_pid', 'is_port', 'is_reference',
  'is_tuple', 'abs', 'hd', 'tl', 'length', 'map_size', 'tuple_size', 'byte_size', 'bit_size',
  'element', 'node', 'round', 'trunc', 'self']);

const COMPARISONS = {
  erlang: { '==': '==', '/=': '/=', '=:=': '=:=', '=/=': '=/=', '<': '<', '>': '>', '=<': '=<', '>=': '>=' },
  elixir: { '==': '==', '!=': '/=', '===': '=:=', '!==': '=/=', '<': '<', '>': '>', '<=': '=<', '>=': '>=' },
};

class Parser {
  constructor(tokens, syntax) {
    this.tokens = tokens;
    this.k = 0;
    this.syntax = syntax;
    this.variables = new Map();  // name -> '$N'
    this.inGuard = false;
  }

  peek(offset = 0) {
    return this.tokens[this.k + offset];
  }
  next() {
    return this.tokens[this.k++];
  }
  is(text, offset = 0) {
    const t = this.peek(offset);
    return (t.type === 'punct' || t.type === 'name') && t.text === text;
  }
  expect(text) {
    const t = this.next();
    if (t.text !== text || (t.type !== 'punct' && t.type !== 'name')) {
      throw new QueryError(`expected '${text}', found ${describe(t)}`, t.pos);
    }
  }

  isVariable(name) {
    if (this.syntax === 'erlang') return /^[A-Z_]/.test(name);
    return /^[a-z_]/.test(name) && !['true', 'false', 'nil', 'when', 'and', 'or', 'not', 'in'].includes(name);
  }

  variable(token) {
    const name = token.text;
    if (name.startsWith('_')) {
      if (this.inGuard) throw new QueryError(`'${name}' matches anything: a guard cannot use it`, token.pos);
      return "'_'";
    }
    if (!this.variables.has(name)) {
      if (this.inGuard) throw new QueryError(`variable ${name} is not one of the arguments`, token.pos);
      this.variables.set(name, `'$${this.variables.size + 1}'`);
    }
    return this.variables.get(name);
  }

  // An argument pattern (or a literal inside a guard).
  term() {
    const t = this.next();
    if (t.type === 'number') return t.text;
    if (t.type === 'string') return this.syntax === 'elixir' ? `<<${erlangString(t.text)}>>` : erlangString(t.text);
    if (t.type === 'quoted') return this.syntax === 'elixir' ? erlangString(t.text) : erlangAtom(t.text);
    if (t.type === 'punct' && t.text === '-' && this.peek().type === 'number') return `-${this.next().text}`;
    if (t.type === 'punct' && t.text === ':' && this.syntax === 'elixir') {
      const a = this.next();
      if (a.type !== 'name' && a.type !== 'string') throw new QueryError('expected an atom after \':\'', a.pos);
      return erlangAtom(a.text);
    }
    if (t.type === 'punct' && t.text === '[') return this.list();
    if (t.type === 'punct' && t.text === '{') return this.tuple();
    if (t.type === 'name') {
      if (this.syntax === 'elixir' && /^[A-Z]/.test(t.text)) return erlangAtom(this.alias(t.text));
      if (this.syntax === 'elixir' && ['true', 'false', 'nil'].includes(t.text)) return t.text;
      if (this.isVariable(t.text)) return this.variable(t);
      return erlangAtom(t.text);
    }
    throw new QueryError(`expected an argument, found ${describe(t)}`, t.pos);
  }

  // Elixir alias Foo.Bar -> the atom 'Elixir.Foo.Bar'.
  alias(first) {
    let name = first;
    while (this.is('.') && this.peek(1).type === 'name' && /^[A-Z]/.test(this.peek(1).text)) {
      this.next();
      name += '.' + this.next().text;
    }
    return `Elixir.${name}`;
  }

  list() {
    const items = [];
    let tail = '';
    if (!this.is(']')) {
      for (;;) {
        items.push(this.inGuard ? this.guardExpr(0) : this.term());
        if (this.is('|')) {
          this.next();
          tail = this.inGuard ? this.guardExpr(0) : this.term();
          break;
        }
        if (!this.is(',')) break;
        this.next();
      }
    }
    this.expect(']');
    if (!tail) return `[${items.join(',')}]`;
    return `[${items.join(',')}|${tail}]`;
  }

  tuple() {
    const items = [];
    if (!this.is('}')) {
      for (;;) {
        items.push(this.inGuard ? this.guardExpr(0) : this.term());
        if (!this.is(',')) break;
        this.next();
      }
    }
    this.expect('}');
    return this.inGuard ? `{{${items.join(',')}}}` : `{${items.join(',')}}`;
  }

  // Guard expressions, by precedence: 0 or/orelse, 1 and/andalso, 2 comparison, 3 in,
  // 4 + -, 5 * / div rem, then unary not and -.
  guardExpr(level) {
    if (level > 5) return this.guardUnary();
    let left = this.guardExpr(level + 1);
    for (;;) {
      const t = this.peek();
      const op = this.binaryOperator(t, level);
      if (!op) return left;
      this.next();
      if (op === 'in') {
        left = this.inList(left, t);
        continue;
      }
      const right = this.guardExpr(level + 1);
      left = `{'${op}',${left},${right}}`;
      if (level === 2) return left;  // comparisons do not chain
    }
  }

  binaryOperator(t, level) {
    if (t.type !== 'punct' && t.type !== 'name') return null;
    const x = t.text;
    switch (level) {
      case 0: return ['or', 'orelse'].includes(x) ? 'orelse' : null;
      case 1: return ['and', 'andalso'].includes(x) ? 'andalso' : null;
      case 2: return t.type === 'punct' ? COMPARISONS[this.syntax][x] || null : null;
      case 3: return this.syntax === 'elixir' && x === 'in' ? 'in' : null;
      case 4: return t.type === 'punct' && (x === '+' || x === '-') ? x : null;
      case 5: return (t.type === 'punct' && x === '*') || (t.type === 'name' && ['div', 'rem'].includes(x)) ? x
        : (t.type === 'punct' && x === '/' ? '/' : null);
      default: return null;
    }
  }

  // x in [a, b, c] -> x == a orelse x == b orelse x == c.
  inList(left, token) {
    if (!this.is('[')) throw new QueryError("'in' needs a literal list, e.g. t in [:a, :b]", token.pos);
    this.next();
    const items = [];
    while (!this.is(']')) {
      items.push(this.guardExpr(2));
      if (!this.is(',')) break;
      this.next();
    }
    this.expect(']');
    if (!items.length) return 'false';
    return items.map((item) => `{'==',${left},${item}}`).reduce((a, b) => `{'orelse',${a},${b}}`);
  }

  guardUnary() {
    if (this.is('not')) {
      this.next();
      return `{'not',${this.guardUnary()}}`;
    }
    if (this.is('-') && this.peek(1).type !== 'number') {
      this.next();
      return `{'-',${this.guardUnary()}}`;
    }
    if (this.is('(')) {
      this.next();
      const inner = this.guardExpr(0);
      this.expect(')');
      return inner;
    }
    const t = this.peek();
    if (t.type === 'name' && this.is('(', 1)) return this.guardCall();
    return this.term();
  }

  guardCall() {
    const t = this.next();
    this.expect('(');
    const args = [];
    while (!this.is(')')) {
      args.push(this.guardExpr(0));
      if (!this.is(',')) break;
      this.next();
    }
    this.expect(')');
    if (this.syntax === 'elixir' && t.text === 'elem' && args.length === 2 && /^[0-9]+$/.test(args[1])) {
      return `{element,${Number(args[1]) + 1},${args[0]}}`;
    }
    if (this.syntax === 'elixir' && t.text === 'is_nil' && args.length === 1) return `{'==',${args[0]},nil}`;
    if (!GUARD_FUNCTIONS.has(t.text)) {
      throw new QueryError(`${t.text}/${args.length} cannot be called in a match spec guard`, t.pos);
    }
    return `{${[t.text, ...args].join(',')}}`;
  }

  // Erlang: G1, G2; G3 -> [[G1, G2], [G3]]; Elixir: one guard.
  guards() {
    this.inGuard = true;
    const alternatives = [];
    let conjunction = [this.guardExpr(0)];
    for (;;) {
      if (this.syntax === 'erlang' && this.is(',')) {
        this.next();
        conjunction.push(this.guardExpr(0));
      } else if (this.syntax === 'erlang' && this.is(';')) {
        this.next();
        alternatives.push(conjunction);
        conjunction = [this.guardExpr(0)];
      } else {
        break;
      }
    }
    alternatives.push(conjunction);
    return alternatives;
  }
}

function describe(token) {
  return token.type === 'end' ? 'the end of the query' : `'${token.text}'`;
}

// "mod:fun(" (Erlang) or "Mod.Sub.fun(" / ":mod.fun(" (Elixir) at the start: a call query.
const ERLANG_CALL = /^\s*('[^']*'|[a-z][A-Za-z0-9_@]*):('[^']*'|[a-z][A-Za-z0-9_@]*[?!]?)\s*\(/;
const ELIXIR_CALL = /^\s*(:[a-z][A-Za-z0-9_@]*|[A-Z][A-Za-z0-9_]*(?:\.[A-Z][A-Za-z0-9_]*)*)\.([a-z_][A-Za-z0-9_]*[?!]?)\s*\(/;

function parseCall(text) {
  let syntax;
  let match = ERLANG_CALL.exec(text);
  if (match) {
    syntax = 'erlang';
  } else {
    match = ELIXIR_CALL.exec(text);
    syntax = 'elixir';
  }
  const [head, module, fun] = match;
  const parser = new Parser(tokenize(text.slice(head.length)), syntax);
  const args = [];
  if (!parser.is(')')) {
    for (;;) {
      args.push(parser.term());
      if (!parser.is(',')) break;
      parser.next();
    }
  }
  parser.expect(')');
  let guards = [[]];
  if (parser.is('when')) {
    parser.next();
    guards = parser.guards();
  }
  const rest = parser.peek();
  if (rest.type !== 'end') {
    throw new QueryError(`unexpected ${describe(rest)} after the call`, head.length + rest.pos);
  }
  const separator = syntax === 'erlang' ? ':' : '.';
  const pattern = `${module}${separator}${fun}/${args.length}`;
  const clauses = guards.map((g) => `{[${args.join(',')}],[${g.join(',')}],[]}`);
  return { patterns: [pattern], matchSpec: `[${clauses.join(',')}]` };
}

// The patterns and match spec of a query (see the top of this file).
export function parseQuery(text) {
  if (!text.trim()) throw new QueryError('type a function: mod:fun/arity, Mod.fun/arity, or mod:fun(Args)');
  if (ERLANG_CALL.test(text) || ELIXIR_CALL.test(text)) return parseCall(text);
  if (/[()]/.test(text)) {
    throw new QueryError('a call with arguments names one function: mod:fun(Args) or Mod.fun(args)');
  }
  // 'orion_demo:' or 'MyApp.Repo.' (what TAB leaves after a module) is the whole module.
  const patterns = text.split(/[\s,]+/).filter(Boolean).map((p) => (/^.+[^:.][:.]$/.test(p) ? p.slice(0, -1) : p));
  for (const p of patterns) {
    if (!/^(:?[A-Za-z_'][^\s]*)$/.test(p)) throw new QueryError(`'${p}' is not a function pattern`);
  }
  return { patterns, matchSpec: '' };
}

// The text autocomplete completes: the last pattern of the query (after the last space or
// comma), or '' when the query is a call with arguments.
export function completionPrefix(text) {
  if (/[()]/.test(text)) return '';
  const m = /([^\s,]*)$/.exec(text);
  return m[1];
}

// Replaces the last pattern of the query with `completion`.
export function applyCompletion(text, completion) {
  return text.slice(0, text.length - completionPrefix(text).length) + completion;
}

// The longest common prefix of the suggestions (what TAB completes to).
export function commonPrefix(items) {
  if (!items.length) return '';
  let prefix = items[0];
  for (const item of items) {
    let n = 0;
    while (n < prefix.length && n < item.length && prefix[n] === item[n]) ++n;
    prefix = prefix.slice(0, n);
  }
  return prefix;
}

// At most this many suggestions are shown (what GET /api/functions returns at most too).
export const MAX_SUGGESTIONS = 100;
