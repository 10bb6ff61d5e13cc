/**
 * The traffic map's page, embedded in the binary as text (no build step, no CDN): its HTML, its script
 * and cytoscape, the graph library that lays the map out.
 */
import cytoscape from "cytoscape/dist/cytoscape.esm.min.mjs" with { type: "text" };
import app from "./app.js" with { type: "text" };
import login from "./login.html" with { type: "text" };
import page from "./page.html" with { type: "text" };

export const CYTOSCAPE_JS: string = cytoscape as unknown as string;
export const APP_JS: string = app as unknown as string;
export const LOGIN_HTML: string = login as unknown as string;
export const PAGE_HTML: string = page as unknown as string;
