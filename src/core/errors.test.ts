import { expect, test } from "bun:test";
import { MeshError } from "./errors.ts";
import { closest, parseArgs } from "../cli/mod.ts";

test("MeshError carries a stable code", () => {
  const e = new MeshError("MESH_USAGE", "Bad flag");
  expect(e.code).toBe("MESH_USAGE");
  expect(e).toBeInstanceOf(Error);
});

test("flags: env twins, lists, hints", () => {
  const spec = {
    name: "x", summary: "", usage: "", flags: [
      { name: "control-plane", kind: "string" as const, help: "" },
      { name: "header", kind: "list" as const, help: "" },
      { name: "dry", kind: "boolean" as const, help: "" },
    ],
  };
  const p = parseArgs(["a", "--header", "k=v", "--header=x=y", "--dry", "--", "cmd", "--z"], spec, { MESH_CONTROL_PLANE: "h:1" });
  expect(p.flags["control-plane"]).toBe("h:1");
  expect(p.flags.header).toEqual(["k=v", "x=y"]);
  expect(p.flags.dry).toBe(true);
  expect(p.positionals).toEqual(["a"]);
  expect(p.rest).toEqual(["cmd", "--z"]);
  expect(() => parseArgs(["--control-plan", "x"], spec, {})).toThrow(/did you mean "--control-plane"/);
  expect(closest("Servce", ["Service", "Pod"])).toBe("Service");
});
