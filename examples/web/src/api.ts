// The typed Tasks API client: openapi-fetch over the types openapi-typescript generated
// from the API's /openapi.json (schema.d.ts; run.sh regenerates it from the running API).
import createClient from "openapi-fetch";

import type { components, paths } from "./schema.js";
import type { TokenKeeper } from "./token.js";

export type Task = components["schemas"]["Task"];
export type ApiError = components["schemas"]["Error"];
export type Priority = Task["priority"]; // "low" | "medium" | "high"
type ListQuery = NonNullable<paths["/api/{user_id}/tasks"]["get"]["parameters"]["query"]>;
export type StatusFilter = NonNullable<ListQuery["status"]>; // "all" | "pending" | "completed"
// Named through their routes, whatever the document calls the schemas.
export type TaskList =
  paths["/api/{user_id}/lists/{list_id}"]["get"]["responses"][200]["content"]["application/json"];
export type ChangesPage =
  paths["/api/{user_id}/changes"]["get"]["responses"][200]["content"]["application/json"];
/** One item of the feed: a list or a task, upserted (`deleted: false`, with `data`) or removed. */
export type Change = ChangesPage["changes"][number];
export type TaskMove = NonNullable<
  paths["/api/{user_id}/tasks/{task_id}/move"]["post"]["requestBody"]
>["content"]["application/json"];

export function createTasksClient(baseUrl: string, tokens: TokenKeeper) {
  /** Every call carries a fresh token; a 401 gets one new token and one retry. */
  async function fetchWithToken(request: Request): Promise<Response> {
    const retry = request.clone(); // a body can be read once: keep a copy for the retry
    request.headers.set("Authorization", `Bearer ${await tokens.get()}`);
    const response = await fetch(request);
    if (response.status !== 401) return response;
    // Refused: expired while the tab slept, or signed by a key the API has not seen yet.
    retry.headers.set("Authorization", `Bearer ${await tokens.refresh()}`);
    return fetch(retry);
  }
  return createClient<paths>({ baseUrl, fetch: fetchWithToken });
}

export type TasksClient = ReturnType<typeof createTasksClient>;

/** One line for the person using the page, from the API's error shape: its message, and
 * the per-field problems (`errors`) that say more than the message does. */
export function describeError(error: ApiError | string | undefined, response: Response): string {
  if (error === undefined || typeof error === "string") return `${response.status} ${response.statusText}`;
  const details = problems(error.errors).filter((problem) => !problem.endsWith(`: ${error.message}`));
  return details.length === 0 ? error.message : `${error.message} (${details.join("; ")})`;
}

/** `{"json": {"title": ["Must not be blank."]}}` → `["title: Must not be blank."]`. */
function problems(errors: unknown, field = ""): string[] {
  if (typeof errors === "string") return [field === "" ? errors : `${field}: ${errors}`];
  if (Array.isArray(errors)) return errors.flatMap((item) => problems(item, field));
  if (errors === null || typeof errors !== "object") return [];
  return Object.entries(errors).flatMap(([key, value]) =>
    // The location ("json", "query") is not the user's business; the field name is.
    problems(value, field === "" && ["json", "query", "headers", "path"].includes(key) ? "" : key),
  );
}
