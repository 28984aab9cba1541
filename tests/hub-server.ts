/**
 * A local stand-in for the Hugging Face hub on 127.0.0.1, serving fixture folders as repositories
 * through the endpoints the real client uses, with the hub's behaviour: `/api/models/{repo}/
 * revision/{rev}` (the commit as `sha`), `/api/models/{repo}/tree/{rev}[/path]` (paginated by a
 * `Link: <…>; rel="next"` header; LFS entries with their SHA-256), and `/{repo}/resolve/{rev}/
 * {path}`: small files answered directly with `ETag: "<git oid>"`, LFS files by a 302 to a CDN
 * path with `X-Linked-ETag`/`X-Linked-Size`, Range requests answered with 206, private repos with
 * 401 without the token.
 */
import { createHash } from "node:crypto";
import { join, relative } from "node:path";

/** One file of a served repository. */
export interface ServedFile {
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly lfs: boolean;
}

/** A served repository. */
export interface ServedRepo {
  readonly repo: string;
  readonly commit: string;
  readonly files: readonly ServedFile[];
  /** answer only requests that carry this token */
  readonly token?: string;
}

/** The running server, its address and what it was asked. */
export interface HubServer {
  readonly url: string;
  /** every request's method, path and Range header */
  readonly requests: { path: string; range: string | null; auth: string | null }[];
  /** the next download of this path stops after this many bytes (a dropped connection) */
  dropAfter(path: string, bytes: number): void;
  /** downloads of this path (not the client's one-byte probes) wait this long before answering */
  slowDown(path: string, ms: number): void;
  close(): Promise<void>;
}

/** Every file under a fixture folder, LFS for model weights (as the hub stores them). */
export async function fixtureFiles(dir: string, prefix = ""): Promise<ServedFile[]> {
  const out: ServedFile[] = [];
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(folder)) {
      const path = join(folder, entry.name);
      if (entry.isDirectory) await walk(path);
      else {
        const name = prefix + relative(dir, path);
        out.push({
          path: name,
          bytes: await Deno.readFile(path),
          lfs: /\.(onnx|onnx_data|pb)$/.test(name),
        });
      }
    }
  };
  await walk(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

export function gitOid(bytes: Uint8Array): string {
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Writes `files` into `cacheDir` as Python's `huggingface_hub` lays out a repository: blobs named
 * by ETag (SHA-256 for LFS files, the git oid otherwise), `snapshots/<commit>/<path>` as relative
 * symlinks into `blobs/`, and `refs/main` holding the bare commit. Returns the repository folder.
 */
export async function writePythonCache(
  cacheDir: string,
  repo: string,
  commit: string,
  files: readonly ServedFile[],
): Promise<string> {
  const repoDir = join(cacheDir, `models--${repo.split("/").join("--")}`);
  await Deno.mkdir(join(repoDir, "blobs"), { recursive: true });
  for (const file of files) {
    const blob = file.lfs ? sha256(file.bytes) : gitOid(file.bytes);
    await Deno.writeFile(join(repoDir, "blobs", blob), file.bytes);
    const pointer = join(repoDir, "snapshots", commit, file.path);
    await Deno.mkdir(join(pointer, ".."), { recursive: true });
    await Deno.symlink(`${"../".repeat(file.path.split("/").length + 1)}blobs/${blob}`, pointer);
  }
  await Deno.mkdir(join(repoDir, "refs"), { recursive: true });
  await Deno.writeTextFile(join(repoDir, "refs", "main"), commit);
  return repoDir;
}

/** Starts the server; pages of the tree listing hold `pageSize` entries. */
export function startHubServer(repos: readonly ServedRepo[], pageSize = 4): HubServer {
  const requests: HubServer["requests"] = [];
  const drops = new Map<string, number>();
  const byRepo = new Map(repos.map((r) => [r.repo, r]));
  const blobs = new Map<string, Uint8Array>();
  for (const r of repos) for (const f of r.files) if (f.lfs) blobs.set(sha256(f.bytes), f.bytes);

  const slow = new Map<string, number>();
  const handler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const range = request.headers.get("range");
    requests.push({ path: url.pathname, range, auth: request.headers.get("authorization") });
    const wait = range === "bytes=0-0" ? undefined : slow.get(url.pathname);
    if (wait) await new Promise((done) => setTimeout(done, wait));
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn) {
      const bytes = blobs.get(cdn[1]);
      return bytes
        ? serveBytes(bytes, range, `"${cdn[1]}"`, {}, drops, url.pathname)
        : notFound("Entry");
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)(?:\/(.*))?$/.exec(
      url.pathname,
    );
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repoName = api?.[1] ?? resolve?.[1];
    const repo = repoName ? byRepo.get(repoName) : undefined;
    if (!repo) return notFound("Repo");
    if (repo.token && request.headers.get("authorization") !== `Bearer ${repo.token}`) {
      return new Response(JSON.stringify({ error: "Invalid credentials" }), { status: 401 });
    }
    const revision = decodeURIComponent(api?.[3] ?? resolve![2]);
    if (revision !== "main" && revision !== repo.commit) return notFound("Revision");
    if (api?.[2] === "revision") {
      return Response.json({ id: repo.repo, sha: repo.commit, private: !!repo.token });
    }
    if (api?.[2] === "tree") {
      const under = api[4] ? `${api[4]}/` : "";
      const entries = repo.files.filter((f) => f.path.startsWith(under)).map((f) => ({
        type: "file",
        oid: gitOid(f.bytes),
        size: f.bytes.length,
        path: f.path,
        ...(f.lfs ? { lfs: { oid: sha256(f.bytes), size: f.bytes.length, pointerSize: 132 } } : {}),
      }));
      const page = Number(url.searchParams.get("cursor") ?? 0);
      const headers: Record<string, string> = {};
      if ((page + 1) * pageSize < entries.length) {
        const next = new URL(url);
        next.searchParams.set("cursor", String(page + 1));
        headers.Link = `<${next.href}>; rel="next"`;
      }
      return Response.json(entries.slice(page * pageSize, (page + 1) * pageSize), { headers });
    }
    const file = repo.files.find((f) => f.path === resolve![3]);
    if (!file) return notFound("Entry");
    const commitHeader = { "X-Repo-Commit": repo.commit };
    if (file.lfs) {
      const hash = sha256(file.bytes);
      return new Response(null, {
        status: 302,
        headers: {
          Location: `${url.origin}/cdn/${hash}`,
          "X-Linked-ETag": `"${hash}"`,
          "X-Linked-Size": String(file.bytes.length),
          ...commitHeader,
        },
      });
    }
    return serveBytes(
      file.bytes,
      range,
      `"${gitOid(file.bytes)}"`,
      commitHeader,
      drops,
      url.pathname,
    );
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    dropAfter: (path, bytes) => drops.set(path, bytes),
    slowDown: (path, ms) => slow.set(path, ms),
    close: () => server.shutdown(),
  };
}

function notFound(what: "Repo" | "Revision" | "Entry"): Response {
  return new Response(JSON.stringify({ error: `${what} not found` }), {
    status: 404,
    headers: { "X-Error-Code": `${what}NotFound` },
  });
}

function serveBytes(
  bytes: Uint8Array,
  range: string | null,
  etag: string,
  extra: Record<string, string>,
  drops: Map<string, number>,
  path: string,
): Response {
  const headers: Record<string, string> = { ETag: etag, "Accept-Ranges": "bytes", ...extra };
  let body = bytes, status = 200;
  const match = range ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
  if (match) {
    const start = Number(match[1]);
    const end = match[2] ? Number(match[2]) : bytes.length - 1;
    body = bytes.subarray(start, end + 1);
    status = 206;
    headers["Content-Range"] = `bytes ${start}-${end}/${bytes.length}`;
  }
  const drop = drops.get(path);
  if (drop !== undefined && !(match && match[2] === "0")) {
    drops.delete(path);
    const part = body.subarray(0, drop);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(part);
      },
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 50)); // the part reaches the client
        controller.error(new Error("connection dropped (test)"));
      },
    });
    return new Response(stream, { status, headers });
  }
  return new Response(new Uint8Array(body), {
    status,
    headers: { ...headers, "Content-Length": String(body.length) },
  });
}
