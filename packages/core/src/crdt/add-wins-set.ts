import type { Json } from "../model/change.js";
import { canonicalJson, compareJson } from "../model/json.js";
import { isNewer } from "./stamp.js";
import type { Undo } from "./undo.js";

let lastString: string | undefined;
let lastStringKey = "";

/**
 * The key of a set element in {@link AddWinsSetState.elements}: its canonical JSON text. A string
 * element's key is remembered for the next call with the same string (a local add looks the
 * element up, then applies it: one `JSON.stringify` instead of two).
 * @param value - A set element.
 * @returns {@link canonicalJson} of it.
 */
export function elementKey(value: Json): string {
  if (typeof value !== "string") return canonicalJson(value);
  if (value !== lastString) {
    lastStringKey = JSON.stringify(value);
    lastString = value;
  }
  return lastStringKey;
}

/** The state of one element of an {@link AddWinsSetState}. */
export interface SetElement {
  readonly value: Json;
  /** Live add tags: the HLC of the adding change, mapped to the op index (the add's stamp). */
  readonly tags: Map<string, number>;
  /** Removed tags whose add has not arrived yet: when it arrives, it is dropped. */
  gone: Set<string> | undefined;
  /** A remove without tags removes every add up to this stamp (inclusive). */
  fh: string | undefined;
  fi: number;
}

/**
 * The state of an add-wins (observed-remove) set node. An `add` tags its element with the adding
 * change's HLC; a `rem` removes the tags its author had observed (listed in the op), so an add the
 * remover had not seen survives. An element is present while it has a live tag.
 */
export class AddWinsSetState {
  /**
   * Elements by canonical JSON text. Code outside this class only fills it while building a new
   * state (the snapshot decoders); every later change of an element's tags goes through the
   * methods, which keep {@link values}' cached view current.
   */
  readonly elements = new Map<string, SetElement>();
  /** The present elements as {@link values} returns them, until an element's liveness may change. */
  #view: readonly Json[] | undefined;

  /** How many elements are present; undefined until counted (a decoder fills `elements` directly). */
  #live: number | undefined;

  #setTag(el: SetElement, tag: string, i: number): void {
    if (el.tags.size === 0) {
      this.#view = undefined;
      if (this.#live !== undefined) this.#live++;
    }
    el.tags.set(tag, i);
  }

  #deleteTag(el: SetElement, tag: string): void {
    if (el.tags.delete(tag) && el.tags.size === 0) {
      this.#view = undefined;
      if (this.#live !== undefined) this.#live--;
    }
  }

  /** How many elements are present (O(1) once counted). */
  size(): number {
    if (this.#live === undefined) {
      let n = 0;
      for (const el of this.elements.values()) if (el.tags.size > 0) n++;
      this.#live = n;
    }
    return this.#live;
  }

  #element(key: string, value: Json, undo: Undo | undefined): SetElement {
    let el = this.elements.get(key);
    if (el === undefined) {
      el = { value, tags: new Map(), gone: undefined, fh: undefined, fi: 0 };
      this.elements.set(key, el);
      undo?.push(() => this.elements.delete(key));
    }
    return el;
  }

  /** Adds `value` with the tag `(h, i)`. */
  add(key: string, value: Json, h: string, i: number, undo: Undo | undefined): boolean {
    const existing = this.elements.get(key);
    if (existing?.fh !== undefined && !isNewer(h, i, existing.fh, existing.fi)) return false;
    if (existing?.gone?.has(h)) {
      const gone = existing.gone;
      gone.delete(h);
      undo?.push(() => gone.add(h));
      return false;
    }
    const el = this.#element(key, value, undo);
    const prev = el.tags.get(h);
    if (prev !== undefined && prev >= i) return false;
    this.#setTag(el, h, i);
    undo?.push(() => (prev === undefined ? this.#deleteTag(el, h) : this.#setTag(el, h, prev)));
    return true;
  }

  /**
   * Removes `value`: the listed tags when given (an unknown tag whose add was not seen yet is kept
   * as removed), else every tag up to the stamp `(h, i)`.
   * @param seen - Whether the change with this HLC was already applied here.
   */
  rem(
    key: string,
    value: Json,
    tags: readonly string[] | undefined,
    h: string,
    i: number,
    seen: (tag: string) => boolean,
    undo: Undo | undefined,
  ): boolean {
    let changed = false;
    if (tags === undefined) {
      const el = this.#element(key, value, undo);
      if (el.fh !== undefined && !isNewer(h, i, el.fh, el.fi)) return false;
      const { fh, fi } = el;
      el.fh = h;
      el.fi = i;
      undo?.push(() => {
        el.fh = fh;
        el.fi = fi;
      });
      for (const [t, ti] of el.tags) {
        if (!isNewer(t, ti, h, i)) {
          this.#deleteTag(el, t);
          undo?.push(() => this.#setTag(el, t, ti));
        }
      }
      return true;
    }
    for (const t of tags) {
      const el = this.elements.get(key);
      const ti = el?.tags.get(t);
      if (el !== undefined && ti !== undefined) {
        this.#deleteTag(el, t);
        undo?.push(() => this.#setTag(el, t, ti));
        changed = true;
      } else if (!seen(t)) {
        const e = this.#element(key, value, undo);
        if (e.gone === undefined) {
          e.gone = new Set();
          undo?.push(() => {
            e.gone = undefined;
          });
        }
        const g = e.gone;
        if (!g.has(t)) {
          g.add(t);
          undo?.push(() => g.delete(t));
        }
      }
    }
    this.#dropIfEmpty(key, undo);
    return changed;
  }

  #dropIfEmpty(key: string, undo: Undo | undefined): void {
    const el = this.elements.get(key);
    if (
      el !== undefined &&
      el.tags.size === 0 &&
      el.fh === undefined &&
      (el.gone === undefined || el.gone.size === 0)
    ) {
      this.elements.delete(key);
      undo?.push(() => this.elements.set(key, el));
    }
  }

  /** Drops every tag not newer than `(h, i)` (a delete at or above the set). */
  pruneOlder(h: string, i: number, undo: Undo | undefined): void {
    for (const [key, el] of this.elements) {
      for (const [t, ti] of el.tags) {
        if (!isNewer(t, ti, h, i)) {
          this.#deleteTag(el, t);
          undo?.push(() => this.#setTag(el, t, ti));
        }
      }
      if (el.fh !== undefined && !isNewer(el.fh, el.fi, h, i)) {
        const { fh, fi } = el;
        el.fh = undefined;
        undo?.push(() => {
          el.fh = fh;
          el.fi = fi;
        });
      }
      this.#dropIfEmpty(key, undo);
    }
  }

  /** Compaction: forgets remove floors that `covered` (stable) stamps make useless. */
  gc(covered: (h: string) => boolean): void {
    for (const [key, el] of this.elements) {
      if (el.fh !== undefined && covered(el.fh)) el.fh = undefined;
      this.#dropIfEmpty(key, undefined);
    }
  }

  /** Whether the set keeps no element state at all. */
  isEmpty(): boolean {
    return this.elements.size === 0;
  }

  /** The live tags of an element (what a local remove observes). */
  tagsOf(key: string): string[] {
    const el = this.elements.get(key);
    return el === undefined ? [] : [...el.tags.keys()];
  }

  /** Whether the element with this canonical key is present (has a live add tag). */
  has(key: string): boolean {
    const el = this.elements.get(key);
    return el !== undefined && el.tags.size > 0;
  }

  /**
   * The present elements, sorted by {@link compareJson}, frozen. The array is built once and
   * shared until an element is added or removed (an add of a present element's new tag, or a
   * remove of one of several tags, keeps it).
   */
  values(): readonly Json[] {
    if (this.#view !== undefined) return this.#view;
    const out: Json[] = [];
    for (const el of this.elements.values()) if (el.tags.size > 0) out.push(el.value);
    out.sort(compareJson);
    this.#view = Object.freeze(out);
    return this.#view;
  }
}
