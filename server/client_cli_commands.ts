/**
 * The client commands themselves, one function each: `get`, `put`, `del`,
 * `scan`, `watch` and `batch` over the typed REST client. Each resolves with
 * its exit code.
 *
 * @module
 */
import process from "node:process";
import { ShaleClient, ShaleClientError } from "../client.ts";
import { EXIT, exitOf, Failure, Usage } from "./client_cli_exit.ts";
import {
  bounds,
  encoder,
  expect,
  keyBytes,
  parseBatch,
  positiveInt,
  readPath,
  readStdin,
  seconds,
  str,
  takesNoArguments,
  type Values,
  version,
} from "./client_cli_input.ts";
import {
  changeLine,
  type Encoding,
  jsonLine,
  textLine,
  writeOut,
} from "./client_cli_output.ts";

export async function get(
  client: ShaleClient,
  values: Values,
  pos: string[],
  encoding: Encoding,
): Promise<number> {
  const [keyArg] = expect(pos, values, 1, "KEY");
  if (!values.json && (values.hex || values.base64)) {
    throw new Usage("--hex and --base64 apply to --json output");
  }
  const key = await keyBytes(values, keyArg);
  const entry = await client.get(key);
  if (entry === null) {
    console.error(`shale get: not found`);
    return EXIT.notFound;
  }
  if (values.json) {
    await writeOut(encoder.encode(jsonLine(entry, encoding, false)));
  } else {
    await writeOut(entry.value);
  }
  return EXIT.ok;
}

export async function put(
  client: ShaleClient,
  values: Values,
  pos: string[],
): Promise<number> {
  const fromFile = values["value-file"] !== undefined;
  const args = expect(pos, values, fromFile ? 1 : 2, "KEY VALUE");
  if (args[0] === "-" && args[1] === "-") {
    throw new Usage("KEY and VALUE cannot both be '-' (stdin)");
  }
  if (values["if-absent"] && values["if-version"] !== undefined) {
    throw new Usage("--if-version and --if-absent exclude each other");
  }
  const ttl = values.ttl === undefined ? undefined : seconds(values.ttl);
  const ifVersion = version(values["if-version"]);
  const key = await keyBytes(values, args[0]);
  const value = fromFile
    ? await readPath(str(values["value-file"])!, "--value-file")
    : args[1] === "-"
    ? await readStdin()
    : encoder.encode(args[1]);
  const v = await client.put(key, value, {
    ttl,
    ifVersion,
    ifAbsent: values["if-absent"] === true ? true : undefined,
  });
  await writeOut(encoder.encode(`${v}\n`));
  return EXIT.ok;
}

export async function del(
  client: ShaleClient,
  values: Values,
  pos: string[],
): Promise<number> {
  const [keyArg] = expect(pos, values, 1, "KEY");
  const key = await keyBytes(values, keyArg);
  await client.delete(key, { ifVersion: version(values["if-version"]) });
  return EXIT.ok;
}

export async function scan(
  client: ShaleClient,
  values: Values,
  pos: string[],
  encoding: Encoding,
): Promise<number> {
  takesNoArguments("scan", pos, values);
  const format = str(values.format) ?? "json";
  if (format !== "json" && format !== "text") {
    throw new Usage(`--format must be json or text, got "${format}"`);
  }
  const { prefix, start, end } = bounds(values);
  const limit = values.limit === undefined
    ? undefined
    : positiveInt(values.limit, "--limit");
  const pageSize = values["page-size"] === undefined
    ? undefined
    : positiveInt(values["page-size"], "--page-size");
  const keysOnly = values["keys-only"] === true;
  for await (
    const e of client.list({
      prefix,
      start,
      end,
      limit,
      pageSize,
      reverse: values.reverse === true,
      keysOnly,
    })
  ) {
    const line = format === "json"
      ? jsonLine(e, encoding, keysOnly)
      : textLine(e, encoding, keysOnly);
    await writeOut(encoder.encode(line));
  }
  return EXIT.ok;
}

export async function watch(
  client: ShaleClient,
  values: Values,
  pos: string[],
  encoding: Encoding,
): Promise<number> {
  takesNoArguments("watch", pos, values);
  if (values.timeout !== undefined) {
    throw new Usage("watch does not take --timeout (it runs until Ctrl-C)");
  }
  const { prefix, start, end } = bounds(values);
  const since = values.since === undefined
    ? undefined
    : version(values.since, "--since");
  // Ctrl-C ends the watch cleanly: the loop stops, the exit code is 0.
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.on("SIGINT", onSigint);
  try {
    for await (
      const ev of client.watch({
        prefix,
        start,
        end,
        since,
        values: values["no-values"] !== true,
        signal: stop.signal,
      })
    ) {
      let lines = "";
      for (const c of ev.changes) lines += changeLine(ev.version, c, encoding);
      // One write per event: a batch's lines go out together, and each
      // event is handed to the OS before the next is read.
      await writeOut(encoder.encode(lines));
    }
  } finally {
    process.off("SIGINT", onSigint);
  }
  return EXIT.ok;
}

export async function batch(
  client: ShaleClient,
  values: Values,
  pos: string[],
): Promise<number> {
  if (values["key-file"] !== undefined || values["key-hex"]) {
    throw new Usage("batch takes keys from its file only");
  }
  const [file] = expect(pos, values, 1, "FILE");
  const bytes = file === "-"
    ? await readStdin()
    : await readPath(file, "the batch file");
  const ops = parseBatch(new TextDecoder().decode(bytes));
  try {
    const r = await client.batch(ops);
    await writeOut(
      encoder.encode(
        JSON.stringify({ applied: r.applied, version: String(r.version) }) +
          "\n",
      ),
    );
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ShaleClientError && err.index !== undefined) {
      throw new Failure(
        exitOf(err),
        `op ${err.index}: ${err.message} (${err.code})`,
      );
    }
    throw err;
  }
}
