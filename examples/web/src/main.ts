// The page: sign up / sign in with Better Auth; then the user's lists (sidebar) and the
// selected list's tasks as a tree, drawn from a local store that only the changes feed
// fills (store.ts). Every write goes through the typed client, is followed by a pull, and
// the page draws the store again; a pull every 2 s while the tab is visible brings the
// other tabs' writes. Drag and drop (drag.ts) moves tasks and lists: one API call per drop.
// Plain DOM, no framework.
import {
  createTasksClient,
  describeError,
  type Priority,
  type StatusFilter,
  type Task,
  type TaskList,
  type TaskMove,
} from "./api.js";
import { AuthError, BetterAuth, type User } from "./auth.js";
import { installDragAndDrop, type Dragged, type Target } from "./drag.js";
import { Store } from "./store.js";
import { TokenKeeper } from "./token.js";

interface Config {
  authUrl: string; // Better Auth's base URL
  apiUrl: string; // the Tasks API's base URL
}

const POLL_MS = 2000; // while the tab is visible
const PRIORITIES = ["low", "medium", "high"] as const satisfies readonly Priority[];
const FILTERS = ["all", "pending", "completed"] as const satisfies readonly StatusFilter[];

const config = (await (await fetch("/config.json")).json()) as Config;
const auth = new BetterAuth(config.authUrl);
const tokens = new TokenKeeper(() => auth.token());
const api = createTasksClient(config.apiUrl, tokens);

let user: User | null = null;
let store: Store | null = null; // the signed-in user's lists and tasks, from the feed
let selectedListId: number | null = null;
let addUnder: number | null = null; // the add form creates a subtask of this task; null: top level
const folded = new Set<number>(); // tasks whose subtasks are hidden (this tab only)
// An open inline form (a task being edited, a list being renamed): kept, with what was typed
// and the focus, when the page draws again under it.
let inline: { key: string; form: HTMLFormElement } | null = null;

// --------------------------------------------------------------------------- DOM helpers

type ElementType<T extends Element> = { new (): T; prototype: T };

function find<T extends Element>(selector: string, type: ElementType<T>, root: ParentNode = document): T {
  const found = root.querySelector(selector);
  if (!(found instanceof type)) throw new Error(`missing ${type.name} ${selector}`);
  return found;
}

function cloneTemplate<T extends Element>(id: string, type: ElementType<T>): T {
  const first = find(`#${id}`, HTMLTemplateElement).content.firstElementChild?.cloneNode(true);
  if (!(first instanceof type)) throw new Error(`template #${id} is not a ${type.name}`);
  return first;
}

function make(tag: string, className: string, text: string): HTMLElement {
  const made = document.createElement(tag);
  made.className = className;
  made.textContent = text;
  return made;
}

const statusLine = find("#status", HTMLParagraphElement);
const listsView = find("#lists", HTMLUListElement);
const tree = find("#task-list", HTMLUListElement);
const filter = find("#filter", HTMLSelectElement);
const addForm = find("#add-form", HTMLFormElement);

function say(message: string, isError = false): void {
  statusLine.textContent = message;
  statusLine.classList.toggle("error", isError);
}

function field(form: HTMLFormElement, name: string): string {
  const value = new FormData(form).get(name);
  return typeof value === "string" ? value : "";
}

function priorityOf(value: string): Priority {
  return PRIORITIES.find((priority) => priority === value) ?? "medium";
}

function statusFilter(): StatusFilter {
  return FILTERS.find((status) => status === filter.value) ?? "all";
}

/** `home, errands` → `["home", "errands"]` (the API checks the rest: length, duplicates). */
function tagsOf(text: string): string[] {
  return text
    .split(",")
    .map((tag) => tag.trim())
    .filter((tag) => tag !== "");
}

/** A date input's `2026-12-24` → the end of that day here, as ISO 8601 with an offset (Z). */
function dueOf(text: string): string | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (match === null) return null;
  return new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3]), 23, 59, 59).toISOString();
}

/** The API's due date (UTC) → the date input's `yyyy-mm-dd`, in local time. */
function dateInputValue(due: string | null): string {
  if (due === null) return "";
  const date = new Date(due);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function idOf(target: Element, selector: string): number {
  const holder = target.closest<HTMLElement>(selector);
  const id = Number(holder?.dataset.id);
  if (!Number.isInteger(id)) throw new Error(`not inside ${selector}`);
  return id;
}

/** Run a user action; report failures on the status line, and sign out if the session ended. */
async function run(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (error instanceof AuthError && error.status === 401) {
      showSignedOut();
      say("Your session has ended: sign in again.", true);
      return;
    }
    say(error instanceof Error ? error.message : String(error), true);
  }
}

function me(): string {
  if (user === null) throw new AuthError("Not signed in.", 401);
  return user.id;
}

function current(): Store {
  if (store === null) throw new AuthError("Not signed in.", 401);
  return store;
}

// --------------------------------------------------------------------------- sync

let inFlight: Promise<void> | null = null; // the pull running now
let queued: Promise<void> | null = null; // one more, after it (it may have started before a write)
let timer: ReturnType<typeof setTimeout> | undefined;
let syncError: string | null = null; // the status line's text while polling fails

/** Pull the feed now, or right after the pull in flight; draw again if anything changed. */
function syncNow(): Promise<void> {
  const pulling = store;
  if (pulling === null) return Promise.resolve();
  if (inFlight === null) {
    inFlight = pulling
      .pull()
      .then((changed) => {
        if (changed && store === pulling) render();
      })
      .finally(() => {
        inFlight = null;
      });
    return inFlight;
  }
  queued ??= inFlight
    .catch(() => undefined)
    .then(() => {
      queued = null;
      return syncNow();
    });
  return queued;
}

/** After a write: pull what it changed (and anything else), then draw the store. */
async function refresh(): Promise<void> {
  await syncNow();
  render();
}

function schedule(): void {
  clearTimeout(timer);
  if (store !== null && document.visibilityState === "visible") timer = setTimeout(tick, POLL_MS);
}

function tick(): void {
  clearTimeout(timer);
  if (store === null) return;
  syncNow()
    .then(
      () => {
        if (syncError !== null && statusLine.textContent === syncError) say("");
        syncError = null;
      },
      (error: unknown) => {
        if (error instanceof AuthError && error.status === 401) return run(() => Promise.reject(error));
        syncError = error instanceof Error ? error.message : String(error);
        say(syncError, true);
      },
    )
    .finally(schedule);
}

// Hidden tabs do not poll; one that becomes visible pulls at once, then every POLL_MS.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") tick();
  else clearTimeout(timer);
});

// --------------------------------------------------------------------------- signed in / out

function showSignedOut(): void {
  user = null;
  store = null;
  clearTimeout(timer);
  tokens.clear();
  selectedListId = addUnder = null;
  inline = null;
  folded.clear();
  listsView.replaceChildren();
  tree.replaceChildren();
  find("#signed-in", HTMLElement).hidden = true;
  find("#who", HTMLElement).hidden = true;
  find("#signed-out", HTMLElement).hidden = false;
}

async function showSignedIn(): Promise<void> {
  const session = await auth.session();
  if (session === null) return showSignedOut();
  user = session.user;
  if (session.jwt !== null) tokens.set(session.jwt);
  else await tokens.refresh();
  store = new Store(api, user.id);
  find("#who-name", HTMLElement).textContent = `${user.name} <${user.email}>`;
  find("#signed-out", HTMLElement).hidden = true;
  find("#who", HTMLElement).hidden = false;
  find("#signed-in", HTMLElement).hidden = false;
  await refresh(); // the first load: everything, page by page
  schedule();
}

// --------------------------------------------------------------------------- drawing

let drawLater = false; // something changed during a drag: draw when it ends
const drag = installDragAndDrop({
  accepts,
  drop,
  ended: () => {
    if (drawLater) render();
  },
});

function selectedList(): TaskList | undefined {
  const lists = store?.lists;
  if (lists === undefined) return undefined;
  return (selectedListId === null ? undefined : lists.get(selectedListId)) ?? store?.defaultList();
}

/** Draw everything from the store (not during a drag: that would remove what is dragged). */
function render(): void {
  if (drag.active()) {
    drawLater = true;
    return;
  }
  drawLater = false;
  const focused = document.activeElement;
  const selection =
    focused instanceof HTMLInputElement && focused.type === "text"
      ? { start: focused.selectionStart, end: focused.selectionEnd }
      : null;

  const list = selectedList();
  selectedListId = list?.id ?? null;
  const parent = addUnder === null ? undefined : store?.tasks.get(addUnder);
  if (parent === undefined || parent.list_id !== list?.id) addUnder = null;
  renderLists();
  renderTasks(list);
  find("#list-title", HTMLElement).textContent = list?.title ?? "";
  find("#add-under", HTMLElement).hidden = addUnder === null;
  find("#add-under-title", HTMLElement).textContent = parent?.title ?? "";
  find("#add-form button[type=submit]", HTMLButtonElement).textContent = addUnder === null ? "Add" : "Add subtask";

  // An inline form drawn again has lost the focus (it was out of the document for a moment).
  if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) {
    focused.focus();
    if (focused instanceof HTMLInputElement && selection?.start != null && selection.end != null) {
      focused.setSelectionRange(selection.start, selection.end);
    }
  }
}

function renderLists(): void {
  const lists = store?.orderedLists() ?? [];
  listsView.replaceChildren(
    ...lists.map((list) => {
      const item = cloneTemplate("list-item", HTMLLIElement);
      item.dataset.id = String(list.id);
      const selected = list.id === selectedListId;
      item.classList.toggle("selected", selected);
      item.classList.toggle("default", list.is_default);
      if (inline?.key === `list:${list.id}`) {
        item.draggable = false;
        item.replaceChildren(inline.form);
        return item;
      }
      const select = find(".select", HTMLButtonElement, item);
      if (selected) select.setAttribute("aria-current", "true");
      find(".name", HTMLElement, select).textContent = list.title;
      find(".count", HTMLElement, select).textContent = String(list.open_count);
      const swatch = find(".swatch", HTMLElement, select);
      if (list.color !== null) swatch.style.background = list.color; // CSSOM, allowed by the CSP
      return item;
    }),
  );
}

function renderTasks(list: TaskList | undefined): void {
  const children = list === undefined || store === null ? new Map<number | null, Task[]>() : store.tree(list.id);
  const status = statusFilter();
  let matching = 0;
  // A task is shown if it matches the filter or has a shown subtask (then dimmed, for context).
  const build = (parentId: number | null): HTMLLIElement[] =>
    (children.get(parentId) ?? []).flatMap((task) => {
      const below = build(task.id);
      const matches = status === "all" || task.completed === (status === "completed");
      if (matches) matching += 1;
      return matches || below.length > 0 ? [renderTask(task, below, matches)] : [];
    });
  tree.replaceChildren(...build(null));
  find("#count", HTMLElement).textContent = `${matching} task${matching === 1 ? "" : "s"}`;
  find("#empty", HTMLElement).hidden = matching > 0;
}

function renderTask(task: Task, subtasks: HTMLLIElement[], matches: boolean): HTMLLIElement {
  const item = cloneTemplate("task-item", HTMLLIElement);
  item.dataset.id = String(task.id);
  item.classList.toggle("completed", task.completed);
  item.classList.toggle("context", !matches);
  item.classList.toggle("has-subtasks", subtasks.length > 0);
  const isFolded = folded.has(task.id) && subtasks.length > 0;
  item.classList.toggle("folded", isFolded);

  const row = find(":scope > .row", HTMLDivElement, item);
  row.dataset.id = String(task.id);
  if (inline?.key === `task:${task.id}`) {
    row.draggable = false; // text can be selected in the editor
    row.replaceChildren(inline.form);
  } else {
    const fold = find(".fold", HTMLButtonElement, row);
    fold.textContent = subtasks.length === 0 ? "" : `${isFolded ? "▸" : "▾"} ${subtasks.length}`;
    fold.disabled = subtasks.length === 0;
    fold.setAttribute("aria-expanded", String(!isFolded));
    fold.setAttribute("aria-label", isFolded ? "Unfold subtasks" : "Fold subtasks");
    find(".toggle", HTMLInputElement, row).checked = task.completed;
    find(".title", HTMLElement, row).textContent = task.title;
    find(".description", HTMLElement, row).textContent = task.description ?? "";
    find(".meta", HTMLElement, row).replaceChildren(...meta(task));
  }
  const below = find(":scope > .subtasks", HTMLUListElement, item);
  below.replaceChildren(...subtasks);
  below.hidden = isFolded;
  const after = find(":scope > .drop-after", HTMLDivElement, item);
  after.dataset.id = String(task.id);
  after.title = `Drop here: after “${task.title}”`;
  return item;
}

function meta(task: Task): HTMLElement[] {
  const parts = [make("span", `priority priority-${task.priority}`, task.priority)];
  if (task.due_date !== null) {
    const due = new Date(task.due_date);
    const time = make("time", "due", `due ${due.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" })}`);
    time.setAttribute("datetime", task.due_date);
    time.classList.toggle("overdue", !task.completed && due.getTime() < Date.now());
    parts.push(time);
  }
  for (const tag of task.tags) parts.push(make("span", "tag", tag));
  return parts;
}

// --------------------------------------------------------------------------- tasks

async function addTask(form: HTMLFormElement): Promise<void> {
  const list = selectedList();
  if (list === undefined) return say("No list to add to yet.", true);
  const parent = addUnder === null ? undefined : current().tasks.get(addUnder);
  const description = field(form, "description").trim();
  const fields = {
    title: field(form, "title"),
    description: description === "" ? null : description,
    completed: false,
    priority: priorityOf(field(form, "priority")),
    due_date: dueOf(field(form, "due")),
    tags: tagsOf(field(form, "tags")),
  };
  const { data, error, response } = await api.POST("/api/{user_id}/tasks", {
    params: { path: { user_id: me() } },
    // A subtask goes to its parent's list (list_id left out); a task to the selected list.
    body: parent === undefined ? { ...fields, list_id: list.id } : { ...fields, parent_id: parent.id },
  });
  if (data === undefined) return say(`Not added: ${describeError(error, response)}`, true);
  form.reset();
  say(parent === undefined ? `Added “${data.title}”.` : `Added “${data.title}” under “${parent.title}”.`);
  if (parent !== undefined) folded.delete(parent.id); // show where it went
  await refresh();
}

async function setCompleted(id: number, completed: boolean): Promise<void> {
  // An explicit value rather than a bare toggle: a retried request cannot flip it back.
  // The API completes the subtasks (or reopens the parents) too; the feed brings them all.
  const { data, error, response } = await api.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
    params: { path: { user_id: me(), task_id: id } },
    body: { completed },
  });
  if (data === undefined) say(`Not changed: ${describeError(error, response)}`, true);
  else say(`“${data.title}” ${data.completed ? "done" : "reopened"}.`);
  await refresh();
}

function openEditor(id: number): void {
  const task = current().tasks.get(id);
  if (task === undefined) return;
  const editor = cloneTemplate("task-editor", HTMLFormElement);
  editor.dataset.id = String(id);
  find("[name=title]", HTMLInputElement, editor).value = task.title;
  find("[name=description]", HTMLInputElement, editor).value = task.description ?? "";
  find("[name=priority]", HTMLSelectElement, editor).value = task.priority;
  find("[name=due]", HTMLInputElement, editor).value = dateInputValue(task.due_date);
  find("[name=tags]", HTMLInputElement, editor).value = task.tags.join(", ");
  inline = { key: `task:${id}`, form: editor };
  render();
  find("[name=title]", HTMLInputElement, editor).focus();
}

async function saveEdit(id: number, form: HTMLFormElement): Promise<void> {
  const description = field(form, "description").trim();
  const { data, error, response } = await api.PUT("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id: me(), task_id: id } },
    body: {
      title: field(form, "title"),
      description: description === "" ? null : description,
      priority: priorityOf(field(form, "priority")),
      due_date: dueOf(field(form, "due")),
      tags: tagsOf(field(form, "tags")),
    },
  });
  if (data === undefined) return say(`Not saved: ${describeError(error, response)}`, true);
  inline = null;
  say(`Saved “${data.title}”.`);
  await refresh();
}

function descendants(id: number): number {
  const tasks = [...current().tasks.values()];
  const count = (parent: number): number =>
    tasks.filter((task) => task.parent_id === parent).reduce((sum, task) => sum + 1 + count(task.id), 0);
  return count(id);
}

async function deleteTask(id: number): Promise<void> {
  const title = current().tasks.get(id)?.title ?? "the task";
  const below = descendants(id);
  const { error, response } = await api.DELETE("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id: me(), task_id: id } },
  });
  if (!response.ok) say(`Not deleted: ${describeError(error, response)}`, true);
  else say(`Deleted “${title}”${below === 0 ? "" : ` and its ${below} subtask${below === 1 ? "" : "s"}`}.`);
  await refresh();
}

/** One drop, one call: POST /tasks/{id}/move with where it goes (docs/api.md, "Move"). */
async function moveTask(id: number, body: TaskMove, where: string): Promise<void> {
  const title = current().tasks.get(id)?.title ?? "the task";
  const { data, error, response } = await api.POST("/api/{user_id}/tasks/{task_id}/move", {
    params: { path: { user_id: me(), task_id: id } },
    body,
  });
  // A drop that breaks a rule (under itself, too deep) is a 422 whose message says which.
  if (data === undefined) say(`Not moved: ${describeError(error, response)}`, true);
  else say(`Moved “${title}” ${where}.`);
  await refresh();
}

// --------------------------------------------------------------------------- lists

async function addList(form: HTMLFormElement): Promise<void> {
  const { data, error, response } = await api.POST("/api/{user_id}/lists", {
    params: { path: { user_id: me() } },
    body: { title: field(form, "title") },
  });
  if (data === undefined) return say(`List not added: ${describeError(error, response)}`, true);
  form.reset();
  selectedListId = data.id;
  say(`Added the list “${data.title}”.`);
  await refresh();
}

function openListEditor(id: number): void {
  const list = current().lists.get(id);
  if (list === undefined) return;
  const editor = cloneTemplate("list-editor", HTMLFormElement);
  editor.dataset.id = String(id);
  find("[name=title]", HTMLInputElement, editor).value = list.title;
  inline = { key: `list:${id}`, form: editor };
  render();
  find("[name=title]", HTMLInputElement, editor).select();
}

async function renameList(id: number, form: HTMLFormElement): Promise<void> {
  const { data, error, response } = await api.PUT("/api/{user_id}/lists/{list_id}", {
    params: { path: { user_id: me(), list_id: id } },
    body: { title: field(form, "title") },
  });
  if (data === undefined) return say(`Not renamed: ${describeError(error, response)}`, true);
  inline = null;
  say(`Renamed the list “${data.title}”.`);
  await refresh();
}

async function deleteList(id: number): Promise<void> {
  const list = current().lists.get(id);
  if (list === undefined) return;
  const count = [...current().tasks.values()].filter((task) => task.list_id === id).length;
  if (!confirm(`Delete the list “${list.title}” and its ${count} task${count === 1 ? "" : "s"}?`)) return;
  // The default list cannot go: the API answers 409, and its message is shown.
  const { error, response } = await api.DELETE("/api/{user_id}/lists/{list_id}", {
    params: { path: { user_id: me(), list_id: id } },
  });
  if (!response.ok) say(`Not deleted: ${describeError(error, response)}`, true);
  else say(`Deleted the list “${list.title}”.`);
  await refresh();
}

async function moveList(id: number, afterId: number | null): Promise<void> {
  const title = current().lists.get(id)?.title ?? "the list";
  const { data, error, response } = await api.POST("/api/{user_id}/lists/{list_id}/move", {
    params: { path: { user_id: me(), list_id: id } },
    body: { after_id: afterId },
  });
  if (data === undefined) say(`Not moved: ${describeError(error, response)}`, true);
  else say(`Moved the list “${title}”.`);
  await refresh();
}

// --------------------------------------------------------------------------- drag and drop

// What a drop means:
//   a task on a task's "after" zone (the strip under it and its subtasks) → right after
//     that task, under the same parent, in the same list;
//   a task on a task's row ("into") → its first subtask;
//   a task on a list in the sidebar → that list's top level, first;
//   a list on a list → the dragged list takes that list's place (after it when dragged
//     down, before it when dragged up).
function accepts(dragged: Dragged, target: Target): string | null {
  if (dragged.kind === "task") {
    if (target.zone === "list") return "drop-list";
    if (target.id === dragged.id) return null; // onto itself: not a move
    return target.zone === "after" ? "drop-after-here" : "drop-into";
  }
  if (target.zone !== "list" || target.id === dragged.id) return null;
  const order = current().orderedLists().map((list) => list.id);
  return order.indexOf(dragged.id) < order.indexOf(target.id) ? "drop-below" : "drop-above";
}

function drop(dragged: Dragged, target: Target): void {
  void run(async () => {
    const s = current();
    if (dragged.kind === "list") {
      const order = s.orderedLists().map((list) => list.id);
      const to = order.indexOf(target.id);
      const down = order.indexOf(dragged.id) < to;
      return moveList(dragged.id, down ? target.id : (order[to - 1] ?? null));
    }
    if (target.zone === "list") {
      const list = s.lists.get(target.id);
      const where = `to the top of “${list?.title ?? "the list"}”`;
      return moveTask(dragged.id, { list_id: target.id, parent_id: null, after_id: null }, where);
    }
    const anchor = s.tasks.get(target.id);
    if (anchor === undefined) return;
    if (target.zone === "after") {
      const body = { list_id: anchor.list_id, parent_id: anchor.parent_id, after_id: anchor.id };
      return moveTask(dragged.id, body, `after “${anchor.title}”`);
    }
    folded.delete(anchor.id); // show where it went
    const body = { list_id: anchor.list_id, parent_id: anchor.id, after_id: null };
    return moveTask(dragged.id, body, `under “${anchor.title}”`);
  });
}

// --------------------------------------------------------------------------- events

function onSubmit(selector: string, handler: (form: HTMLFormElement) => Promise<void>): void {
  const form = find(selector, HTMLFormElement);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void run(() => handler(form));
  });
}

onSubmit("#sign-up-form", async (form) => {
  await auth.signUp(field(form, "name"), field(form, "email"), field(form, "password"));
  form.reset();
  say("");
  await showSignedIn();
});

onSubmit("#sign-in-form", async (form) => {
  await auth.signIn(field(form, "email"), field(form, "password"));
  form.reset();
  say("");
  await showSignedIn();
});

find("#sign-out", HTMLButtonElement).addEventListener("click", () => {
  void run(async () => {
    await auth.signOut();
    showSignedOut();
    say("Signed out.");
  });
});

onSubmit("#add-form", addTask);
onSubmit("#list-form", addList);
filter.addEventListener("change", render);
find("#add-under-clear", HTMLButtonElement).addEventListener("click", () => {
  addUnder = null;
  render();
});

// One listener for every task and list, present and future (event delegation).
tree.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement && target.classList.contains("toggle")) {
    void run(() => setCompleted(idOf(target, ".row"), target.checked));
  }
});
tree.addEventListener("click", (event) => {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return;
  const button = target.closest("button");
  if (button === null || button.type === "submit") return;
  if (button.classList.contains("cancel")) {
    inline = null;
    return render();
  }
  const id = idOf(button, ".row");
  if (button.classList.contains("delete")) void run(() => deleteTask(id));
  else if (button.classList.contains("edit")) openEditor(id);
  else if (button.classList.contains("fold")) {
    if (!folded.delete(id)) folded.add(id);
    render();
  } else if (button.classList.contains("add-sub")) {
    addUnder = id;
    folded.delete(id);
    render();
    find("[name=title]", HTMLInputElement, addForm).focus();
  }
});
tree.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  if (form instanceof HTMLFormElement) void run(() => saveEdit(idOf(form, "form"), form));
});

listsView.addEventListener("click", (event) => {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return;
  const button = target.closest("button");
  if (button === null || button.type === "submit") return;
  if (button.classList.contains("cancel")) {
    inline = null;
    return render();
  }
  const id = idOf(button, "li.list");
  if (button.classList.contains("select")) {
    if (selectedListId !== id) addUnder = null;
    selectedListId = id;
    render();
  } else if (button.classList.contains("rename")) openListEditor(id);
  else if (button.classList.contains("delete-list")) void run(() => deleteList(id));
});
listsView.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  if (form instanceof HTMLFormElement) void run(() => renameList(idOf(form, "li.list"), form));
});

await run(async () => {
  try {
    await showSignedIn();
  } catch (error) {
    showSignedOut(); // Better Auth unreachable, say: show the forms and the reason
    throw error;
  }
});
