%% A line-oriented REPL for the C++ integration tests (tests/integration/support/beam_node).
%%
%% Prints "ORION-READY <os pid>" once, then reads one Erlang expression per line from stdin
%% (ending with a dot), evaluates it and prints "ORION-RESULT <term>" on one line, or
%% "ORION-ERROR <class>:<reason>". Stops at end of input.
-module(orion_test_repl).
-export([start/0]).

start() ->
    io:setopts(standard_io, [{encoding, unicode}]),
    io:format("ORION-READY ~s~n", [os:getpid()]),
    loop(erl_eval:new_bindings()).

loop(Bindings) ->
    case io:get_line('') of
        eof ->
            erlang:halt(0);
        {error, _} ->
            erlang:halt(0);
        Line ->
            NewBindings =
                try eval(Line, Bindings) of
                    {Value, B} ->
                        io:format("ORION-RESULT ~ts~n", [one_line(Value)]),
                        B
                catch
                    Class:Reason ->
                        io:format("ORION-ERROR ~ts~n", [one_line({Class, Reason})]),
                        Bindings
                end,
            loop(NewBindings)
    end.

eval(Line, Bindings) ->
    {ok, Tokens, _} = erl_scan:string(Line),
    {ok, Exprs} = erl_parse:parse_exprs(Tokens),
    {value, Value, NewBindings} = erl_eval:exprs(Exprs, Bindings),
    {Value, NewBindings}.

one_line(Term) ->
    Text = unicode:characters_to_list(io_lib:format("~tp", [Term])),
    string:join(string:lexemes(Text, "\n"), " ").
