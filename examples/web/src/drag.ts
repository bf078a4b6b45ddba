// HTML5 drag and drop, wired once for the whole document (event delegation), so it keeps
// working on rows drawn after it was set up.
//
// Markup: an element with `data-drag="task"` or `data-drag="list"` (and `draggable="true"`)
// can be dragged; one with `data-drop="after"`, `"into"` or `"list"` is a drop zone. Both
// carry `data-id`. The page decides what a zone accepts and what a drop does; this module
// tracks the drag, marks the zone under the pointer and reports the drop, once.

export type DragKind = "task" | "list";
export type Zone = "after" | "into" | "list";

export interface Dragged {
  kind: DragKind;
  id: number;
}

export interface Target {
  zone: Zone;
  id: number;
  element: HTMLElement;
}

export interface DragHandlers {
  /** The class that marks `target` as where `dragged` would land, or null: not a place for it. */
  accepts(dragged: Dragged, target: Target): string | null;
  /** Called once per drop on a zone that accepts it. */
  drop(dragged: Dragged, target: Target): void;
  /** The drag is over (dropped or not): the page may draw again. */
  ended(): void;
}

const ZONES: readonly Zone[] = ["after", "into", "list"];
const KINDS: readonly DragKind[] = ["task", "list"];

function isZone(value: string | undefined): value is Zone {
  return ZONES.some((zone) => zone === value);
}

function isKind(value: string | undefined): value is DragKind {
  return KINDS.some((kind) => kind === value);
}

function targetOf(node: EventTarget | null): Target | null {
  if (!(node instanceof Element)) return null;
  const element = node.closest<HTMLElement>("[data-drop]");
  if (element === null) return null;
  const zone = element.dataset.drop;
  const id = Number(element.dataset.id);
  return isZone(zone) && Number.isInteger(id) ? { zone, id, element } : null;
}

export function installDragAndDrop(handlers: DragHandlers): { active(): boolean } {
  let dragged: Dragged | null = null;
  let source: HTMLElement | null = null;
  let marked: { element: HTMLElement; className: string } | null = null;

  function mark(element: HTMLElement | null, className: string | null): void {
    if (marked !== null && (marked.element !== element || marked.className !== className)) {
      marked.element.classList.remove(marked.className);
      marked = null;
    }
    if (element !== null && className !== null && marked === null) {
      element.classList.add(className);
      marked = { element, className };
    }
  }

  function finish(): void {
    if (dragged === null) return;
    mark(null, null);
    source?.classList.remove("drag-source");
    document.body.classList.remove("dragging");
    dragged = null;
    source = null;
    handlers.ended();
  }

  /** Where the pointer is, if that zone takes what is being dragged (and with which mark). */
  function accepted(event: DragEvent): { target: Target; className: string } | null {
    if (dragged === null) return null;
    const target = targetOf(event.target);
    if (target === null) return null;
    const className = handlers.accepts(dragged, target);
    return className === null ? null : { target, className };
  }

  document.addEventListener("dragstart", (event) => {
    if (!(event.target instanceof Element)) return;
    const element = event.target.closest<HTMLElement>("[data-drag]");
    if (element === null) return;
    const kind = element.dataset.drag;
    const id = Number(element.dataset.id);
    if (!isKind(kind) || !Number.isInteger(id)) return;
    dragged = { kind, id };
    source = element;
    if (event.dataTransfer !== null) {
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", `${kind} ${id}`); // some browsers drag nothing without data
    }
    // Colours only: a layout change under the pointer would move the zones while dragging.
    element.classList.add("drag-source");
    document.body.classList.add("dragging");
  });

  document.addEventListener("dragover", (event) => {
    const found = accepted(event);
    mark(found?.target.element ?? null, found?.className ?? null);
    if (found === null) return;
    event.preventDefault(); // this zone takes the drop
    if (event.dataTransfer !== null) event.dataTransfer.dropEffect = "move";
  });

  document.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) mark(null, null); // left the window
  });

  document.addEventListener("drop", (event) => {
    const found = accepted(event);
    const what = dragged;
    if (found === null || what === null) return;
    event.preventDefault();
    finish();
    handlers.drop(what, found.target);
  });

  document.addEventListener("dragend", finish);

  return { active: () => dragged !== null };
}
