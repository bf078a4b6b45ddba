// What a TypeScript frontend does with the Tasks API, written the way a frontend
// developer writes it: types generated from the live /openapi.json by openapi-typescript
// (./schema.d.ts), calls made through openapi-fetch, compiled with tsc --strict.
//
// It proves two things:
//   1. at compile time, that the generated types are exact (tsc fails otherwise): a create
//      needs only a title, `id` is a number, enums are unions, nullable fields are nullable,
//      repeatable query parameters are arrays, error bodies have the error shape;
//   2. at run time, against a live server, that the service answers what the types say.
//
// Run: API_URL=http://127.0.0.1:8000 USER_ID=alice TOKEN=<jwt for alice> node out/client-check.js
// Use a throwaway user: it creates tasks, and clears that user's completed tasks at the end.
// Exit status 0 when every check passed; otherwise 1, with what went wrong on stderr.
import createClient from "openapi-fetch";

import type { components, paths } from "./schema.js";

type Task = components["schemas"]["Task"];
type ApiError = components["schemas"]["Error"];
type PaginationMetadata = components["schemas"]["PaginationMetadata"];
type Priority = Task["priority"];
// A list, named through its route (whatever the document calls its schema).
type TaskList =
  paths["/api/{user_id}/lists/{list_id}"]["get"]["responses"][200]["content"]["application/json"];
// Request bodies as their own types, for the compile-time checks at the end.
type TaskUpdateBody =
  NonNullable<paths["/api/{user_id}/tasks/{task_id}"]["put"]["requestBody"]>["content"]["application/json"];
type TaskMoveBody =
  NonNullable<paths["/api/{user_id}/tasks/{task_id}/move"]["post"]["requestBody"]>["content"]["application/json"];
type ListUpdateBody =
  NonNullable<paths["/api/{user_id}/lists/{list_id}"]["put"]["requestBody"]>["content"]["application/json"];
// The changes feed: a page, and one of its items (a union narrowed on type, then deleted).
type ChangesPage =
  paths["/api/{user_id}/changes"]["get"]["responses"][200]["content"]["application/json"];
type Change = ChangesPage["changes"][number];

const API_URL = process.env.API_URL;
const USER_ID = process.env.USER_ID;
const TOKEN = process.env.TOKEN;
if (!API_URL || !USER_ID || !TOKEN) {
  console.error("set API_URL, USER_ID and TOKEN (a JWT whose sub is USER_ID)");
  process.exit(2);
}

const client = createClient<paths>({
  baseUrl: API_URL,
  headers: { Authorization: `Bearer ${TOKEN}` },
});

// --------------------------------------------------------------------------- checking

class CheckFailed extends Error {}

let step = "start";
let checks = 0;

function describe(value: unknown): string {
  if (value instanceof Response) {
    const headers = [...value.headers].map(([k, v]) => `${k}: ${v}`).join("; ");
    return `HTTP ${value.status} (${headers})`;
  }
  return JSON.stringify(value);
}

/** Stop with a message naming the step and what was seen. */
function check(condition: boolean, what: string, ...seen: unknown[]): asserts condition {
  checks += 1;
  if (!condition) {
    throw new CheckFailed(`${step}: ${what}\n  seen: ${seen.map(describe).join("\n        ")}`);
  }
}

function header(response: Response, name: string): string {
  const value = response.headers.get(name);
  check(value !== null, `response has a ${name} header`, response);
  return value;
}

const RUN = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const path = { user_id: USER_ID };
const taskPath = (task: Task) => ({ user_id: USER_ID, task_id: task.id });
const listPath = (list: TaskList) => ({ user_id: USER_ID, list_id: list.id });

// --------------------------------------------------------------------------- the program

async function main(): Promise<void> {
  step = "create with only a title";
  const milk = await client.POST("/api/{user_id}/tasks", {
    params: { path },
    body: { title: "  Buy milk  " },
  });
  check(milk.response.status === 201, "201 Created", milk.response, milk.error);
  check(milk.data !== undefined, "a task in the body", milk.error);
  const milkId: number = milk.data.id; // a number, not number | undefined
  check(Number.isSafeInteger(milkId) && milkId > 0, "id is a positive integer", milk.data);
  check(milk.data.title === "Buy milk", "title trimmed", milk.data);
  check(milk.data.user_id === USER_ID, "user_id is the token's subject", milk.data);
  check(milk.data.description === null, "description defaults to null", milk.data);
  check(milk.data.completed === false, "completed defaults to false", milk.data);
  const defaultPriority: Priority = "medium";
  check(milk.data.priority === defaultPriority, "priority defaults to medium", milk.data);
  check(milk.data.due_date === null, "due_date defaults to null", milk.data);
  check(Array.isArray(milk.data.tags) && milk.data.tags.length === 0, "tags default to []", milk.data);
  check(milk.data.completed_at === null, "completed_at is null", milk.data);
  check(milk.data.created_at === milk.data.updated_at, "created_at = updated_at", milk.data);
  const location = header(milk.response, "Location");
  check(new URL(location, API_URL).pathname === `/api/${USER_ID}/tasks/${milkId}`, "Location", location);
  const milkEtag = header(milk.response, "ETag");

  step = "create with a due date, tags and a priority";
  const tag = `check-${RUN}`;
  const rent = await client.POST("/api/{user_id}/tasks", {
    params: { path },
    body: {
      title: "Pay rent",
      description: "Transfer before the 1st",
      priority: "high",
      due_date: "2026-12-01T09:00:00+02:00",
      tags: ["Home", tag],
    },
  });
  check(rent.response.status === 201 && rent.data !== undefined, "201 with the task", rent.response, rent.error);
  const rentTask: Task = rent.data;
  check(rentTask.priority === "high", "priority as sent", rentTask);
  check(rentTask.due_date !== null, "due_date kept", rentTask);
  const due: string = rentTask.due_date; // narrowed from string | null
  check(Date.parse(due) === Date.parse("2026-12-01T07:00:00Z") && due.endsWith("Z"), "due_date in UTC", due);
  check(JSON.stringify(rentTask.tags) === JSON.stringify(["Home", tag]), "tags kept in order", rentTask);

  const plants = await client.POST("/api/{user_id}/tasks", {
    params: { path },
    body: { title: "Water plants", priority: "low", due_date: "2026-11-28T08:00:00Z", tags: [tag] },
  });
  check(plants.data !== undefined, "third task created", plants.response, plants.error);
  const plantsTask: Task = plants.data;

  step = "create with an Idempotency-Key, twice";
  const key = `client-check-${RUN}`;
  const first = await client.POST("/api/{user_id}/tasks", {
    params: { path, header: { "Idempotency-Key": key } },
    body: { title: "Only once" },
  });
  const again = await client.POST("/api/{user_id}/tasks", {
    params: { path, header: { "Idempotency-Key": key } },
    body: { title: "Only once" },
  });
  check(first.response.status === 201 && first.data !== undefined, "first: 201", first.response, first.error);
  check(again.response.status === 201 && again.data !== undefined, "replay: 201", again.response, again.error);
  check(again.data.id === first.data.id, "the replay returns the same task", first.data, again.data);
  check(again.response.headers.get("Idempotent-Replayed") === "true", "Idempotent-Replayed: true", again.response);

  step = "update one field (PUT)";
  const renamed = await client.PUT("/api/{user_id}/tasks/{task_id}", {
    params: { path: taskPath(milk.data), header: { "If-Match": milkEtag } },
    body: { title: "Buy oat milk" },
  });
  check(renamed.response.status === 200 && renamed.data !== undefined, "200 with the task", renamed.response, renamed.error);
  check(renamed.data.title === "Buy oat milk", "title changed", renamed.data);
  check(renamed.data.priority === "medium" && renamed.data.description === null, "other fields kept", renamed.data);
  const renamedEtag = header(renamed.response, "ETag");
  check(renamedEtag !== milkEtag, "a new ETag after the write", milkEtag, renamedEtag);

  step = "a stale If-Match is a typed 412";
  const stale = await client.PUT("/api/{user_id}/tasks/{task_id}", {
    params: { path: taskPath(milk.data), header: { "If-Match": milkEtag } },
    body: { title: "Lost update" },
  });
  check(stale.data === undefined && stale.error !== undefined, "an error, not data", stale.response, stale.data);
  const conflict: ApiError = stale.error;
  check(stale.response.status === 412 && conflict.code === 412, "412", stale.response, conflict);
  check(typeof conflict.message === "string" && conflict.message.length > 0, "a message", conflict);
  const unchanged = await client.GET("/api/{user_id}/tasks/{task_id}", { params: { path: taskPath(milk.data) } });
  check(unchanged.data?.title === "Buy oat milk", "nothing changed", unchanged.data, unchanged.error);

  step = "toggle";
  const toggled = await client.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
    params: { path: taskPath(milk.data) },
  });
  check(toggled.response.status === 200 && toggled.data !== undefined, "200", toggled.response, toggled.error);
  check(toggled.data.completed === true && toggled.data.completed_at !== null, "completed, with completed_at", toggled.data);
  const reopened = await client.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
    params: { path: taskPath(plantsTask) },
    body: { completed: false },
  });
  check(reopened.data?.completed === false && reopened.data.completed_at === null, "explicit false", reopened.data, reopened.error);

  step = "list with typed filters, sorted by due date";
  const listed = await client.GET("/api/{user_id}/tasks", {
    params: {
      path,
      query: { status: "pending", sort: "due_date", order: "asc", tag: [tag.toUpperCase()], page: 1, page_size: 10 },
    },
  });
  check(listed.response.status === 200 && listed.data !== undefined, "200 with a list", listed.response, listed.error);
  const titles = listed.data.map((task: Task) => task.title);
  check(JSON.stringify(titles) === JSON.stringify(["Water plants", "Pay rent"]), "filtered and sorted", titles);
  const pagination = JSON.parse(header(listed.response, "X-Pagination")) as PaginationMetadata;
  check(pagination.total === 2 && pagination.page === 1, "X-Pagination total and page", pagination);
  check(pagination.total_pages === 1 && pagination.last_page === 1, "X-Pagination pages", pagination);
  check(pagination.next_page === undefined, "no next page", pagination);

  const urgent = await client.GET("/api/{user_id}/tasks", {
    params: { path, query: { tag: [tag], priority: ["high", "medium"], sort: "priority" } },
  });
  check(urgent.data?.length === 1 && urgent.data[0]?.id === rentTask.id, "priority filter", urgent.data, urgent.error);

  step = "a list's ETag and If-None-Match: 304";
  const listEtag = header(listed.response, "ETag");
  const notModified = await client.GET("/api/{user_id}/tasks", {
    params: {
      path,
      query: { status: "pending", sort: "due_date", order: "asc", tag: [tag.toUpperCase()], page: 1, page_size: 10 },
      header: { "If-None-Match": listEtag },
    },
  });
  check(notModified.response.status === 304, "304 Not Modified", notModified.response);

  step = "a typed 422";
  const invalid = await client.POST("/api/{user_id}/tasks", { params: { path }, body: { title: "   " } });
  check(invalid.response.status === 422 && invalid.error !== undefined, "422", invalid.response, invalid.data);
  const problem: ApiError = invalid.error;
  const where = problem.errors?.["json"];
  check(typeof where === "object" && where !== null && "title" in where, "errors.json.title", problem);

  step = "delete (with If-Match)";
  const current = await client.GET("/api/{user_id}/tasks/{task_id}", { params: { path: taskPath(rentTask) } });
  check(current.data !== undefined, "get the task", current.response, current.error);
  const deleted = await client.DELETE("/api/{user_id}/tasks/{task_id}", {
    params: { path: taskPath(rentTask), header: { "If-Match": header(current.response, "ETag") } },
  });
  check(deleted.response.status === 204, "204 No Content", deleted.response, deleted.error);
  const gone = await client.GET("/api/{user_id}/tasks/{task_id}", { params: { path: taskPath(rentTask) } });
  check(gone.response.status === 404 && gone.error?.code === 404, "then 404", gone.response, gone.error);

  step = "clear completed";
  const cleared = await client.DELETE("/api/{user_id}/tasks", {
    params: { path, query: { status: "completed" } },
  });
  check(cleared.response.status === 200 && cleared.data !== undefined, "200", cleared.response, cleared.error);
  const count: number = cleared.data.deleted;
  check(count >= 1, "the completed task is gone", cleared.data);
  const left = await client.GET("/api/{user_id}/tasks/{task_id}", { params: { path: taskPath(milk.data) } });
  check(left.response.status === 404, "the completed task is gone", left.response);

  for (const task of [plantsTask, first.data]) {
    await client.DELETE("/api/{user_id}/tasks/{task_id}", { params: { path: taskPath(task) } });
  }

  await organizing();
  await syncing();
}

// Lists, a subtask, a move, and the list read in its manual order (docs/api.md, "Lists",
// "Subtasks", "Move", and "The list": a list in its manual order).
async function organizing(): Promise<void> {
  step = "create a list";
  const created = await client.POST("/api/{user_id}/lists", {
    params: { path },
    body: { title: `  Check ${RUN}  `, color: "#3B82F6" },
  });
  check(created.response.status === 201 && created.data !== undefined, "201 with the list", created.response, created.error);
  const list: TaskList = created.data;
  const listId: number = list.id;
  check(list.title === `Check ${RUN}`, "title trimmed", list);
  check(list.color === "#3b82f6", "colour stored in lower case", list);
  check(list.is_default === false && list.open_count === 0, "not the default list, nothing open", list);
  const listLocation = header(created.response, "Location");
  check(new URL(listLocation, API_URL).pathname === `/api/${USER_ID}/lists/${listId}`, "Location", listLocation);

  step = "create a task in the list, and a subtask of it";
  const parent = await client.POST("/api/{user_id}/tasks", {
    params: { path },
    body: { title: "Parent", list_id: listId },
  });
  check(parent.response.status === 201 && parent.data !== undefined, "201 with the task", parent.response, parent.error);
  const parentTask: Task = parent.data;
  check(parentTask.list_id === listId && parentTask.parent_id === null, "in the list, at the top level", parentTask);
  const child = await client.POST("/api/{user_id}/tasks", {
    params: { path },
    body: { title: "Child", parent_id: parentTask.id },
  });
  check(child.response.status === 201 && child.data !== undefined, "201 with the subtask", child.response, child.error);
  const childTask: Task = child.data;
  check(childTask.parent_id === parentTask.id, "parent_id is the parent", childTask);
  check(childTask.list_id === listId, "a subtask is in its parent's list", childTask);

  step = "move the subtask to the top level, right after its former parent";
  const childEtag = header(child.response, "ETag");
  const moved = await client.POST("/api/{user_id}/tasks/{task_id}/move", {
    params: { path: taskPath(childTask), header: { "If-Match": childEtag } },
    body: { parent_id: null, after_id: parentTask.id },
  });
  check(moved.response.status === 200 && moved.data !== undefined, "200 with the task", moved.response, moved.error);
  check(moved.data.id === childTask.id, "the moved task keeps its id", moved.data);
  check(moved.data.parent_id === null && moved.data.list_id === listId, "top level, same list", moved.data);
  check(header(moved.response, "ETag") !== childEtag, "a new ETag after the move", childEtag, moved.response);

  step = "read the list in its manual order";
  const ordered = await client.GET("/api/{user_id}/tasks", {
    params: { path, query: { list_id: listId, sort: "position" } },
  });
  check(ordered.response.status === 200 && ordered.data !== undefined, "200 with a list", ordered.response, ordered.error);
  const order = ordered.data.map((task: Task) => task.id);
  check(JSON.stringify(order) === JSON.stringify([parentTask.id, childTask.id]), "[parent, former subtask]", order);
  const [firstInList, secondInList] = ordered.data;
  check(firstInList !== undefined && secondInList !== undefined, "two tasks", ordered.data);
  check(secondInList.parent_id === null, "the moved task's parent_id is null", secondInList);
  check(firstInList.position < secondInList.position, "positions compare with plain <", ordered.data);

  step = "the list counts its open tasks; deleting it deletes them";
  const counted = await client.GET("/api/{user_id}/lists/{list_id}", { params: { path: listPath(list) } });
  check(counted.response.status === 200 && counted.data !== undefined, "200 with the list", counted.response, counted.error);
  check(counted.data.open_count === 2, "open_count counts both tasks", counted.data);
  const removed = await client.DELETE("/api/{user_id}/lists/{list_id}", {
    params: { path: listPath(list), header: { "If-Match": header(counted.response, "ETag") } },
  });
  check(removed.response.status === 204, "204 No Content", removed.response, removed.error);
  const orphan = await client.GET("/api/{user_id}/tasks/{task_id}", { params: { path: taskPath(parentTask) } });
  check(orphan.response.status === 404, "the list's tasks went with it", orphan.response);
}

// A small store kept in step with the changes feed, as docs/api.md "Sync" shows it: the
// first load page by page, a few writes, a poll with the cursor, and the store equals
// what GET /lists and GET /tasks answer.
async function syncing(): Promise<void> {
  const lists = new Map<number, TaskList>();
  const tasks = new Map<number, Task>();
  let cursor: string | undefined;

  /** Apply every page from the cursor until has_more is false; how many pages. */
  async function pull(limit: number): Promise<number> {
    for (let pages = 1; ; pages += 1) {
      const query = cursor === undefined ? { limit } : { cursor, limit };
      const page = await client.GET("/api/{user_id}/changes", { params: { path, query } });
      check(page.response.status === 200 && page.data !== undefined, "200 with a page", page.response, page.error);
      const changes: Change[] = page.data.changes;
      check(changes.length <= limit, "at most limit items", changes.length, limit);
      for (const item of changes) {
        // Narrowed by type, then by deleted: no cast, and data is a Task or a TaskList.
        if (item.type === "task") {
          if (item.deleted) tasks.delete(item.id);
          else tasks.set(item.id, item.data);
        } else if (item.deleted) {
          lists.delete(item.id);
        } else {
          lists.set(item.id, item.data);
        }
      }
      const next: string = page.data.cursor;
      cursor = next;
      if (!page.data.has_more) return pages;
      check(changes.length === limit, "a page with has_more is full", changes.length, limit);
    }
  }

  /** The store is exactly what GET /lists and every page of GET /tasks answer. */
  async function assertInStep(): Promise<void> {
    const listed = await client.GET("/api/{user_id}/lists", { params: { path } });
    check(listed.data !== undefined, "GET /lists", listed.response, listed.error);
    check(listed.data.length === lists.size, "as many lists as the store", listed.data, [...lists.values()]);
    for (const list of listed.data) {
      check(JSON.stringify(lists.get(list.id)) === JSON.stringify(list), "the list as GET answers it", list, lists.get(list.id));
    }
    const all: Task[] = [];
    for (let page = 1; ; page += 1) {
      const got = await client.GET("/api/{user_id}/tasks", { params: { path, query: { page, page_size: 500 } } });
      check(got.data !== undefined, "GET /tasks", got.response, got.error);
      all.push(...got.data);
      const meta = JSON.parse(header(got.response, "X-Pagination")) as PaginationMetadata;
      check(meta.last_page !== undefined, "X-Pagination has last_page", meta);
      if (page >= meta.last_page) break;
    }
    check(all.length === tasks.size, "as many tasks as the store", all.map((t) => t.id), [...tasks.keys()]);
    for (const task of all) {
      check(JSON.stringify(tasks.get(task.id)) === JSON.stringify(task), "the task as GET answers it", task, tasks.get(task.id));
    }
  }

  step = "sync: make something to load";
  const kept = await client.POST("/api/{user_id}/tasks", { params: { path }, body: { title: `Kept ${RUN}` } });
  const doomed = await client.POST("/api/{user_id}/tasks", { params: { path }, body: { title: `Doomed ${RUN}` } });
  check(kept.data !== undefined && doomed.data !== undefined, "two tasks", kept.error, doomed.error);
  const doomedTask: Task = doomed.data;

  step = "sync: the first load, page by page";
  const pages = await pull(1);
  check(pages === lists.size + tasks.size, "one item a page with limit 1", pages, lists.size, tasks.size);
  check(tasks.has(kept.data.id) && tasks.has(doomedTask.id), "the tasks are in the store", [...tasks.keys()]);
  check([...lists.values()].some((list) => list.is_default), "the default list is in the store", [...lists.values()]);
  await assertInStep();

  step = "sync: nothing new is an empty page that gives a cursor";
  const before = cursor;
  const quiet = await client.GET("/api/{user_id}/changes", { params: { path, query: { cursor } } });
  check(quiet.data !== undefined && quiet.data.changes.length === 0, "no changes", quiet.response, quiet.data);
  check(quiet.data.has_more === false && quiet.data.cursor.length > 0, "a cursor, no more", quiet.data);
  cursor = quiet.data.cursor;

  step = "sync: a few writes, then a poll";
  const made = await client.POST("/api/{user_id}/tasks", { params: { path }, body: { title: `Synced ${RUN}` } });
  check(made.data !== undefined, "created", made.response, made.error);
  const madeTask: Task = made.data;
  const done = await client.PATCH("/api/{user_id}/tasks/{task_id}/complete", { params: { path: taskPath(madeTask) } });
  check(done.data?.completed === true, "toggled", done.response, done.error);
  const removed = await client.DELETE("/api/{user_id}/tasks/{task_id}", { params: { path: taskPath(doomedTask) } });
  check(removed.response.status === 204, "deleted", removed.response, removed.error);
  await pull(500);
  check(tasks.get(madeTask.id)?.completed === true, "the new task, completed, is in the store", tasks.get(madeTask.id));
  check(!tasks.has(doomedTask.id), "the deleted task left the store", [...tasks.keys()]);
  await assertInStep();
  check(cursor !== before, "the poll moved the cursor", before, cursor);

  step = "sync: a cursor the feed never gave is a typed 422";
  const bad = await client.GET("/api/{user_id}/changes", { params: { path, query: { cursor: "not-a-cursor" } } });
  check(bad.response.status === 422 && bad.error !== undefined, "422", bad.response, bad.data);
  const refused: ApiError = bad.error;
  const inQuery = refused.errors?.["query"];
  check(typeof inQuery === "object" && inQuery !== null && "cursor" in inQuery, "errors.query.cursor", refused);

  for (const task of [kept.data, madeTask]) {
    await client.DELETE("/api/{user_id}/tasks/{task_id}", { params: { path: taskPath(task) } });
  }
}

// --------------------------------------------------------------------------- compile time only
// Never called: tsc must reject each line marked @ts-expect-error. If the generated types
// were looser (a plain string for an enum, a field that can be null typed as never null,
// a single value where the API takes a list), the marker itself becomes the error.
export async function typeExpectations(): Promise<void> {
  // @ts-expect-error a title is required
  await client.POST("/api/{user_id}/tasks", { params: { path }, body: {} });
  // @ts-expect-error priority is one of low | medium | high
  await client.POST("/api/{user_id}/tasks", { params: { path }, body: { title: "x", priority: "urgent" } });
  // @ts-expect-error tags is a list of strings
  await client.POST("/api/{user_id}/tasks", { params: { path }, body: { title: "x", tags: "home" } });
  // @ts-expect-error status is all | pending | completed
  await client.GET("/api/{user_id}/tasks", { params: { path, query: { status: "done" } } });
  // @ts-expect-error sort is an enum
  await client.GET("/api/{user_id}/tasks", { params: { path, query: { sort: "random" } } });
  // @ts-expect-error tag is repeatable: a list
  await client.GET("/api/{user_id}/tasks", { params: { path, query: { tag: "home" } } });
  // @ts-expect-error task_id is a number
  await client.GET("/api/{user_id}/tasks/{task_id}", { params: { path: { user_id: "u", task_id: "1" } } });

  const { data } = await client.GET("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id: "u", task_id: 1 } },
  });
  if (data === undefined) return;
  // @ts-expect-error description can be null
  data.description.trim();
  // @ts-expect-error due_date can be null
  data.due_date.trim();
  // @ts-expect-error completed_at can be null
  data.completed_at.trim();
  // @ts-expect-error id is read-only
  data.id = 2;
  const always: [number, string, string, boolean, Priority, string[], string, string] = [
    data.id, data.user_id, data.title, data.completed, data.priority, data.tags, data.created_at, data.updated_at,
  ];
  void always;
  const tree: [number, number | null, string] = [data.list_id, data.parent_id, data.position];
  void tree;
  // @ts-expect-error parent_id can be null
  const parentId: number = data.parent_id;
  void parentId;
  // @ts-expect-error position is read-only
  data.position = "a0";

  // Bodies as their own types: an object literal with a field the body does not offer fails.
  // @ts-expect-error list_id, parent_id and position change only through move
  const update: TaskUpdateBody = { list_id: 2 };
  // @ts-expect-error position is the service's to choose
  const move: TaskMoveBody = { position: "a0" };
  // @ts-expect-error is_default is the service's
  const rename: ListUpdateBody = { is_default: true };
  void [update, move, rename];
  // @ts-expect-error a list needs a title
  await client.POST("/api/{user_id}/lists", { params: { path }, body: {} });
  // `default` names your default list on every list route; after_id null puts it first.
  await client.POST("/api/{user_id}/lists/{list_id}/move", {
    params: { path: { user_id: "u", list_id: "default" } },
    body: { after_id: null },
  });

  const lists = await client.GET("/api/{user_id}/lists", { params: { path } });
  const some = lists.data?.[0];
  if (some === undefined) return;
  // @ts-expect-error a list's color can be null
  some.color.trim();
  const listFields: [number, string, string, boolean, string, number, string, string] = [
    some.id, some.user_id, some.title, some.is_default, some.position, some.open_count, some.created_at, some.updated_at,
  ];
  void listFields;
}

// The changes feed, at compile time: an item is a union a client narrows on type and
// deleted; a deletion has neither data nor etag, and limit is a number.
export async function changeTypeExpectations(): Promise<void> {
  // @ts-expect-error limit is a number
  await client.GET("/api/{user_id}/changes", { params: { path, query: { limit: "5" } } });
  const feed = await client.GET("/api/{user_id}/changes", { params: { path } });
  const item = feed.data?.changes[0];
  if (item === undefined) return;
  // @ts-expect-error an item may be a deletion, which has no data
  void item.data;
  if (item.deleted) {
    // @ts-expect-error a deletion has no etag
    void item.etag;
    return;
  }
  const etag: string = item.etag;
  void etag;
  if (item.type === "list") {
    const list: TaskList = item.data;
    // @ts-expect-error a list's data is not a task
    const wrong: Task = item.data;
    void [list, wrong];
  } else {
    const task: Task = item.data;
    void task;
  }
}

main().then(
  () => {
    console.log(`client-check: ${checks} checks passed against ${API_URL}`);
  },
  (error: unknown) => {
    if (error instanceof CheckFailed) {
      console.error(`client-check FAILED after ${checks} checks\n${error.message}`);
    } else {
      console.error(`client-check FAILED at "${step}" with an exception:`, error);
    }
    process.exitCode = 1;
  },
);
