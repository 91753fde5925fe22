/**
 * Flag values to typed settings (server/cli_values.ts): what each parser
 * accepts, and the usage error naming the setting as the user gave it.
 */
import assert from "node:assert/strict";
import {
  autoSize,
  bool,
  int,
  oneOf,
  parseSize,
  size,
} from "../../server/cli_values.ts";

class Usage extends Error {}
const fail = (m: string): never => {
  throw new Usage(m);
};

function usage(fn: () => unknown, message: string): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof Usage, String(e));
    assert.equal(e.message, message);
    return true;
  });
}

Deno.test("sizes accept K, M, G suffixes and reject nonsense", () => {
  assert.equal(parseSize("4096"), 4096);
  assert.equal(parseSize("64MiB"), 64 << 20);
  assert.equal(parseSize("1.5k"), 1536);
  assert.equal(parseSize("2G"), 2 * 2 ** 30);
  for (const bad of ["", "0", "-1", "1X", "MiB", "1e9"]) {
    assert.equal(parseSize(bad), undefined, bad);
  }
});

Deno.test("parseSize: units are case-insensitive, space and b are allowed, fractions floor", () => {
  assert.equal(parseSize("512K"), 512 << 10);
  assert.equal(parseSize("512kb"), 512 << 10);
  assert.equal(parseSize("3 MB"), 3 << 20);
  assert.equal(parseSize(" 7b "), 7);
  assert.equal(parseSize("1GIB"), 1 << 30);
  assert.equal(parseSize("1.0001k"), 1024); // 1024.1 bytes floors to 1024
  assert.equal(parseSize("0.5"), undefined); // floors to 0: not positive
  assert.equal(parseSize("9007199254740992"), undefined); // past 2^53 - 1
  assert.equal(parseSize("8388608g"), undefined); // 2^53: not safe either
  assert.equal(parseSize("1T"), undefined); // no such unit
});

Deno.test("size and autoSize: the usage error names the setting", () => {
  assert.equal(size("64MiB", "--cache-size", fail), 64 << 20);
  usage(
    () => size("lots", "SHALE_CACHE_SIZE", fail),
    'SHALE_CACHE_SIZE must be a positive size such as 4096, 512K or 64MiB, got "lots"',
  );
  assert.equal(autoSize("auto", "--memory-budget", fail), undefined);
  assert.equal(autoSize("1g", "--memory-budget", fail), 1 << 30);
  usage(
    () => autoSize("Auto", "--memory-budget", fail),
    '--memory-budget must be a positive size such as 4096, 512K or 64MiB, got "Auto"',
  );
});

Deno.test("int takes decimal digits only, within [min, max]", () => {
  assert.equal(int("0", "--port", 0, 65535, fail), 0);
  assert.equal(int("65535", "--port", 0, 65535, fail), 65535);
  assert.equal(int("007", "--port", 0, 65535, fail), 7);
  for (const bad of ["65536", "-1", "1.5", "1e3", "0x10", " 80", ""]) {
    usage(
      () => int(bad, "--port", 0, 65535, fail),
      `--port must be an integer from 0 to 65535, got "${bad}"`,
    );
  }
});

Deno.test("oneOf and bool accept only the listed spellings", () => {
  const modes = ["always", "interval", "none"] as const;
  assert.equal(oneOf("interval", modes, "--sync", fail), "interval");
  usage(
    () => oneOf("Always", modes, "SHALE_SYNC", fail),
    'SHALE_SYNC must be one of always, interval, none, got "Always"',
  );
  assert.equal(bool("true", "--x", fail), true);
  assert.equal(bool("1", "--x", fail), true);
  assert.equal(bool("false", "--x", fail), false);
  assert.equal(bool("0", "--x", fail), false);
  for (const bad of ["yes", "TRUE", "", "2"]) {
    usage(
      () => bool(bad, "--x", fail),
      `--x must be one of true, false, 1, 0, got "${bad}"`,
    );
  }
});
