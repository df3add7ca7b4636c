// Loads one of the dashboard's ES modules (Sources/PlexusDashboard/Public) in node.
// The files are plain `.js` served to browsers as modules; node would read them as
// CommonJS without a package.json beside them, so they are imported from their text.
// Their imports of other dashboard modules (`from '/assets/…'`, absolute as the browser
// sees them) are loaded the same way; a module is loaded once, so all share one core.js.
import { readFileSync } from 'node:fs';

const root = new URL('../../Sources/PlexusDashboard/Public/', import.meta.url);
const urls = new Map(); // path -> data: URL

function moduleURL(path) {
  if (!urls.has(path)) {
    const source = readFileSync(new URL(path, root), 'utf8')
      .replace(/(\bfrom\s*)'\/(assets\/[^']+)'/g, (_, from, dep) => `${from}"${moduleURL(dep)}"`);
    urls.set(path, 'data:text/javascript;charset=utf-8,' + encodeURIComponent(source));
  }
  return urls.get(path);
}

export async function loadModule(path) {
  return import(moduleURL(path));
}
