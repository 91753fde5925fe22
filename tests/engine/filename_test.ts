import assert from "node:assert/strict";
import {
  currentContents,
  currentPath,
  FileType,
  lockPath,
  logFileName,
  logPath,
  manifestFileName,
  numberInName,
  parseCurrentContents,
  parseFileName,
  tableFileName,
  tablePath,
  tempFileName,
} from "../../engine/filename.ts";

Deno.test("numbered file names have at least six zero-padded digits", () => {
  assert.equal(logFileName(7), "000007.log");
  assert.equal(tableFileName(12), "000012.sst");
  assert.equal(manifestFileName(7), "MANIFEST-000007");
  assert.equal(tableFileName(1234567), "1234567.sst");
  assert.equal(manifestFileName(1234567), "MANIFEST-1234567");
});

Deno.test("paths join the directory and the file name", () => {
  assert.equal(logPath("/d", 3), "/d/000003.log");
  assert.equal(tablePath("/d", 12), "/d/000012.sst");
  assert.equal(currentPath("/d"), "/d/CURRENT");
  assert.equal(lockPath("/d"), "/d/LOCK");
  assert.equal(tempFileName("/d/000012.sst"), "/d/000012.sst.tmp");
});

Deno.test("every name shale builds parses back to its kind and number", () => {
  for (const n of [0, 1, 7, 999999, 1000000, 1234567]) {
    assert.deepEqual(parseFileName(logFileName(n)), {
      type: FileType.Log,
      number: n,
    });
    assert.deepEqual(parseFileName(tableFileName(n)), {
      type: FileType.Table,
      number: n,
    });
    assert.deepEqual(parseFileName(manifestFileName(n)), {
      type: FileType.Manifest,
      number: n,
    });
  }
  assert.deepEqual(parseFileName("CURRENT"), { type: FileType.Current });
  assert.deepEqual(parseFileName("LOCK"), { type: FileType.Lock });
  assert.deepEqual(parseFileName("CURRENT.tmp"), { type: FileType.Temp });
  assert.deepEqual(parseFileName("000009.sst.tmp"), { type: FileType.Temp });
});

Deno.test("names shale does not own are not recognized", () => {
  for (
    const name of [
      "",
      "7.log",
      "00007.sst",
      "000007.log.bak",
      "000007.txt",
      "MANIFEST-",
      "MANIFEST-abc",
      "current",
      "LOCK.pid",
      "notes.md",
    ]
  ) {
    assert.equal(parseFileName(name), undefined, name);
  }
});

Deno.test("the number in a name counts leftovers of every numbered kind", () => {
  assert.equal(numberInName("000012.log"), 12);
  assert.equal(numberInName("000013.sst"), 13);
  assert.equal(numberInName("000014.sst.tmp"), 14);
  assert.equal(numberInName("MANIFEST-000015"), 15);
  assert.equal(numberInName("1234567.sst"), 1234567);
  assert.equal(numberInName("CURRENT"), undefined);
  assert.equal(numberInName("00001.log"), undefined);
});

Deno.test("CURRENT holds exactly one manifest name and a newline", () => {
  assert.equal(currentContents("MANIFEST-000002"), "MANIFEST-000002\n");
  assert.equal(
    parseCurrentContents(currentContents("MANIFEST-000002")),
    "MANIFEST-000002",
  );
  assert.equal(parseCurrentContents("MANIFEST-1234567\n"), "MANIFEST-1234567");
  for (
    const text of [
      "",
      "MANIFEST-000002",
      "MANIFEST-000002\n\n",
      "garbage\n",
      "MANIFEST-12\n",
    ]
  ) {
    assert.equal(parseCurrentContents(text), undefined, JSON.stringify(text));
  }
});
