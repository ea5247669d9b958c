// The query box's language (src/query.js): patterns, calls with argument patterns in Erlang and
// Elixir syntax turned into match specs, completion helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { applyCompletion, commonPrefix, completionPrefix, parseQuery } from '../src/query.js';

test('plain patterns pass through, Erlang and Elixir forms alike', () => {
  assert.deepEqual(parseQuery('lists:sort/1'), { patterns: ['lists:sort/1'], matchSpec: '' });
  assert.deepEqual(parseQuery(' lists:sort/1, Enum.map/2  MyApp.Repo :ets.lookup/2 '),
    { patterns: ['lists:sort/1', 'Enum.map/2', 'MyApp.Repo', ':ets.lookup/2'], matchSpec: '' });
});

test('a module as TAB leaves it (orion_demo:, MyApp.Repo.) is the whole module', () => {
  assert.deepEqual(parseQuery('orion_demo:'), { patterns: ['orion_demo'], matchSpec: '' });
  assert.deepEqual(parseQuery('MyApp.Repo. :ets:'), { patterns: ['MyApp.Repo', ':ets'], matchSpec: '' });
});

test('an Erlang call becomes a pattern and a match spec', () => {
  assert.deepEqual(parseQuery('ets:lookup(data, _)'),
    { patterns: ['ets:lookup/2'], matchSpec: "[{[data,'_'],[],[]}]" });
  assert.deepEqual(parseQuery("users:get(Id, nadia, Id) when Id > 10, is_integer(Id); Id =:= -1"),
    { patterns: ['users:get/3'],
      matchSpec: "[{['$1',nadia,'$1'],[{'>','$1',10},{is_integer,'$1'}],[]},{['$1',nadia,'$1'],[{'=:=','$1',-1}],[]}]" });
  assert.deepEqual(parseQuery('m:f({a, "s", [1, 2 | T]}, \'Q x\', _Ignored)'),
    { patterns: ['m:f/3'], matchSpec: "[{[{a,\"s\",[1,2|'$1']},'Q x','_'],[],[]}]" });
  assert.deepEqual(parseQuery('m:f()'), { patterns: ['m:f/0'], matchSpec: '[{[],[],[]}]' });
});

test('an Elixir call: aliases, atoms, binaries, lowercase variables, in', () => {
  assert.deepEqual(parseQuery('Registry.dispatch(MyApp.Registry, t, _) when t in [:a, :b]'),
    { patterns: ['Registry.dispatch/3'],
      matchSpec: "[{['Elixir.MyApp.Registry','$1','_'],[{'orelse',{'==','$1',a},{'==','$1',b}}],[]}]" });
  assert.deepEqual(parseQuery('MyApp.Users.get(id, "nadia") when id >= 10 and not is_nil(id) or id === 1'),
    { patterns: ['MyApp.Users.get/2'],
      matchSpec: "[{['$1',<<\"nadia\">>],[{'orelse',{'andalso',{'>=','$1',10},{'not',{'==','$1',nil}}},{'=:=','$1',1}}],[]}]" });
  assert.deepEqual(parseQuery(':ets.lookup(:data, key) when elem(key, 0) != nil'),
    { patterns: [':ets.lookup/2'], matchSpec: "[{[data,'$1'],[{'/=',{element,1,'$1'},nil}],[]}]" });
  assert.deepEqual(parseQuery('Foo.bar(x, true) when x * 2 + 1 < 7'),
    { patterns: ['Foo.bar/2'], matchSpec: "[{['$1',true],[{'<',{'+',{'*','$1',2},1},7}],[]}]" });
});

test('malformed queries say what is wrong and where', () => {
  assert.throws(() => parseQuery(''), /type a function/);
  assert.throws(() => parseQuery('ets:lookup(data, _'), /expected '\)', found the end of the query/);
  assert.throws(() => parseQuery('ets:lookup(X) when Y > 1'), /variable Y is not one of the arguments/);
  assert.throws(() => parseQuery('ets:lookup(X) when foo(X)'), /foo\/1 cannot be called in a match spec guard/);
  assert.throws(() => parseQuery('ets:lookup(X) extra'), /unexpected 'extra' after the call \(at character/);
  assert.throws(() => parseQuery('lists:sort(1) lists:map/2'), /unexpected/);
  assert.throws(() => parseQuery('a b(1)'), /names one function/);
  assert.throws(() => parseQuery('m:f("abc)'), /unterminated string/);
  assert.throws(() => parseQuery('Foo.bar(x) when x in 3'), /'in' needs a literal list/);
});

test('completion: the last pattern, the common prefix of the suggestions', () => {
  assert.equal(completionPrefix('lists:so'), 'lists:so');
  assert.equal(completionPrefix('lists:sort/1, Enum.ma'), 'Enum.ma');
  assert.equal(completionPrefix('ets:lookup(a'), '');
  assert.equal(applyCompletion('lists:sort/1 ets:lo', 'ets:lookup/2'), 'lists:sort/1 ets:lookup/2');
  assert.equal(commonPrefix(['lists:sort/1', 'lists:sort/2', 'lists:sublist/2']), 'lists:s');
  assert.equal(commonPrefix(['lists:sort/1']), 'lists:sort/1');
  assert.equal(commonPrefix([]), '');
});
