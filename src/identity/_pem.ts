/** PEM splitting and joining (private to src/identity). */
const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/g;

/** Every PEM block in `text`, with its label, in order. */
export function pemBlocks(text: string): { label: string; pem: string; der: Uint8Array }[] {
  const out: { label: string; pem: string; der: Uint8Array }[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const b64 = m[2]!.replace(/\s+/g, "");
    let der: Uint8Array;
    try {
      der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    } catch {
      der = new Uint8Array();
    }
    out.push({ label: m[1]!, pem: toPem(m[1]!, der), der });
  }
  return out;
}

/** The CERTIFICATE blocks of `text`, each normalized to one PEM string. */
export function certificatePems(text: string): string[] {
  return pemBlocks(text).filter((b) => b.label === "CERTIFICATE").map((b) => b.pem);
}

/** DER bytes as PEM with 64-character lines and a trailing newline. */
export function toPem(label: string, der: Uint8Array | ArrayBuffer): string {
  const bytes = der instanceof Uint8Array ? der : new Uint8Array(der);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  const b64 = btoa(bin);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Concatenates PEM blocks, one per line group, ending in a newline. */
export function joinPem(pems: readonly string[]): string {
  return pems.map((p) => (p.endsWith("\n") ? p : p + "\n")).join("");
}
