import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { l4OnlyConfig, tamper } from "./demo.ts";
import { planFromYaml } from "./plan.ts";

const root = join(import.meta.dir, "..", "..");

test("the L4 step's config drops the L7 policies and keeps the topology", () => {
  const text = readFileSync(join(root, "config", "mesh-no-waypoint.yaml"), "utf8");
  const l4 = l4OnlyConfig(text);
  expect(text).toContain("kind: AuthorizationPolicy");
  expect(l4).not.toContain("kind: AuthorizationPolicy");
  expect(l4).not.toContain("kind: RequestAuthentication");
  expect(l4).not.toContain("istio.io/use-waypoint");
  expect(planFromYaml(l4)).toEqual(planFromYaml(text));
});

test("a tampered token keeps header and claims but not its signature", () => {
  const token = readFileSync(join(import.meta.dir, "testdata", "demo.jwt"), "utf8").trim();
  const bad = tamper(token);
  const [h, p, s] = token.split(".");
  const [bh, bp, bs] = bad.split(".");
  expect([bh, bp]).toEqual([h, p]);
  expect(bs).not.toBe(s);
  expect(bs!.length).toBe(s!.length);
  expect([...bs!].filter((c, i) => c !== s![i]).length).toBe(1);
});
