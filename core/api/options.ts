/**
 * Options schemas: how a plugin declares its options and the values it receives.
 *
 * @module
 */

/**
 * Type of one plugin option. `size` accepts a byte count or a string such as `64M`, `2G`, `4k`
 * and is delivered as a number of bytes. `path` is a string naming a host file.
 */
export type OptionType = "string" | "integer" | "number" | "boolean" | "size" | "path";

/** Describes one option a plugin accepts. */
export interface OptionSpec {
  /** The value type. */
  readonly type: OptionType;
  /** One line of help text, shown by `vmon plugins`. */
  readonly description: string;
  /** The value used when the option is not given. */
  readonly default?: string | number | boolean;
  /** For `string`: the accepted values. */
  readonly enum?: readonly string[];
  /** For numeric types: the smallest accepted value. */
  readonly min?: number;
  /** For numeric types: the largest accepted value. */
  readonly max?: number;
  /** The option must be given (and has no default). */
  readonly required?: boolean;
}

/** A plugin's options schema: option name to its spec. */
export type OptionsSchema = Readonly<Record<string, OptionSpec>>;

/** The value type of an option of type `T`. */
export type ValueOf<T extends OptionType> = T extends "boolean" ? boolean
  : T extends "string" | "path" ? string
  : number;

/** The validated option values a plugin's `setup` receives for schema `S`. */
export type OptionValues<S extends OptionsSchema> = {
  readonly [K in keyof S]: S[K] extends { default: unknown } | { required: true }
    ? ValueOf<S[K]["type"]>
    : ValueOf<S[K]["type"]> | undefined;
};
