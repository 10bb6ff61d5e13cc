import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adminSecretFile, ensureAdminSecret, netnsId, removeAdminSecrets } from "./auth.ts";

const dir = mkdtempSync(join(tmpdir(), "mesh-admin-remove-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("removes the secrets (and creation leftovers) of the given namespaces only, in every directory", () => {
  const a = join(dir, "a"), b = join(dir, "b");
  for (const d of [a, b]) mkdirSync(d, { recursive: true });
  const files = {
    [a]: ["4026532001-15000.secret", "4026532001-15020.secret", "4026532001-15000.secret.123.ab12cd34", "4026532002-15000.secret", "40265320011-15000.secret", "x4026532001-15000.secret", "4026532001-notes.txt"],
    [b]: ["4026532001-15000.secret.77.restore", "4026532003-15000.secret"],
  };
  for (const [d, names] of Object.entries(files)) for (const n of names) writeFileSync(join(d, n), "s\n", { mode: 0o600 });
  const removed = removeAdminSecrets([4026532001, "4026532003"], [a, b, join(dir, "missing")]);
  expect(removed.sort()).toEqual([
    join(a, "4026532001-15000.secret"),
    join(a, "4026532001-15000.secret.123.ab12cd34"),
    join(a, "4026532001-15020.secret"),
    join(b, "4026532001-15000.secret.77.restore"),
    join(b, "4026532003-15000.secret"),
  ].sort());
  expect(readdirSync(a).sort()).toEqual(["4026532001-notes.txt", "4026532002-15000.secret", "40265320011-15000.secret", "x4026532001-15000.secret"].sort());
  expect(readdirSync(b)).toEqual([]);
});

test("a secret made by ensureAdminSecret in this namespace is found by its netnsId", () => {
  const d = join(dir, "real");
  const s = ensureAdminSecret(15099, [d]);
  expect(s.path).toBe(adminSecretFile(d, 15099, netnsId()));
  expect(removeAdminSecrets([netnsId()], [d])).toEqual([s.path]);
  expect(readdirSync(d)).toEqual([]);
});
