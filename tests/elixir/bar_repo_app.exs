# An Elixir application node for DaemonBeamsTest (tests/integration/daemon_bpf_test.cc):
# Bar.Repo.get/1 is the function the test captures. It prints "BAR-READY <os pid> <flavor>",
# then each line "run N" on stdin makes N calls of Bar.Repo.get/1 and prints "DONE N".
defmodule Bar.Repo do
  def get(id), do: {:ok, %{id: id, name: "user#{id}"}}
end

defmodule Bar.Workload do
  def loop do
    case IO.gets("") do
      line when is_binary(line) ->
        case String.split(line) do
          ["run", n] ->
            n = String.to_integer(n)
            Enum.each(1..n, fn i -> Bar.Repo.get(i) end)
            IO.puts("DONE #{n}")

          _ ->
            IO.puts("UNKNOWN #{inspect(line)}")
        end

        loop()

      _eof ->
        :ok
    end
  end
end

IO.puts("BAR-READY #{System.pid()} #{:erlang.system_info(:emu_flavor)}")
Bar.Workload.loop()
