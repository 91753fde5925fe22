/**
 * The command line of a bench driver that writes a results file: every
 * option is a `--name value` string (the driver parses numbers itself) or a
 * boolean flag, and each driver takes `--results PATH` (where the report
 * goes) and `--no-write` (print only). Unknown options are refused.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** What {@link benchArgs} parses. */
export interface BenchArgsSpec<
  S extends string,
  O extends string,
  F extends string,
> {
  /** The default of `--results`. */
  results: string;
  /** `--name value` options and their defaults. */
  strings: Record<S, string>;
  /** `--name value` options without a default: undefined unless given. */
  optional?: readonly O[];
  /** Boolean flags besides `--no-write`, false unless given. */
  flags?: readonly F[];
}

/** The parsed command line: each option by its name. */
export type BenchArgs<S extends string, O extends string, F extends string> =
  & { [K in S | "results"]: string }
  & { [K in O]: string | undefined }
  & { [K in F | "no-write"]: boolean };

/** Parses `Deno.args` as `spec` says. */
export function benchArgs<
  S extends string,
  const O extends string = never,
  const F extends string = never,
>(spec: BenchArgsSpec<S, O, F>): BenchArgs<S, O, F> {
  type Option = { type: "string" | "boolean"; default?: string | boolean };
  const options: Record<string, Option> = {};
  for (const [name, value] of Object.entries<string>(spec.strings)) {
    options[name] = { type: "string", default: value };
  }
  for (const name of spec.optional ?? []) options[name] = { type: "string" };
  for (const name of [...spec.flags ?? [], "no-write"]) {
    options[name] = { type: "boolean", default: false };
  }
  options.results = { type: "string", default: spec.results };
  const { values } = parseArgs({ args: Deno.args, options });
  return values as BenchArgs<S, O, F>;
}
