// Code tables of GB/T 26875.3-2011 as data: system types, component types, analog types, and the
// meaning of the bits of the state words. Names are the snake_case words that travel as event
// attributes and metric names. Where a row comes from ../shared/protocols.md it says so; the other
// rows are from public implementations of the standard and are NOT verified against its text
// (docs/protocols/fire-gb26875.md lists them).

/** System type flag (建筑消防设施系统类型). GB/T 26875.3-2011 §8.2.1.1, table number not verified. */
export const SYSTEM_TYPES: Readonly<Record<number, string>> = {
  0: 'general',
  1: 'fire_alarm_system', // protocols.md
  10: 'linkage_controller', // protocols.md
  11: 'hydrant', // protocols.md
  12: 'sprinkler', // protocols.md
  13: 'gas_suppression', // protocols.md
  14: 'water_spray_pump',
  15: 'water_spray_pressure_vessel',
  16: 'foam',
  17: 'dry_powder',
  18: 'smoke_control', // protocols.md
  19: 'fire_door_shutter',
  20: 'fire_elevator', // protocols.md
  21: 'emergency_broadcast',
  22: 'emergency_lighting',
  23: 'fire_power_supply',
  24: 'fire_telephone',
};

/** Component type (建筑消防设施部件类型). GB/T 26875.3-2011 §8.2.1.2 (not verified); none of these rows is in protocols.md. */
export const COMPONENT_TYPES: Readonly<Record<number, string>> = {
  0: 'general',
  1: 'fire_alarm_controller',
  10: 'combustible_gas_detector',
  11: 'point_gas_detector',
  12: 'standalone_gas_detector',
  13: 'line_gas_detector',
  16: 'electrical_fire_monitor',
  17: 'residual_current_detector',
  18: 'temperature_electrical_fire_detector',
  21: 'detection_loop',
  22: 'fire_display_panel',
  23: 'manual_call_point',
  24: 'hydrant_button',
  25: 'fire_detector',
  30: 'heat_detector',
  31: 'point_heat_detector',
  32: 'point_heat_detector_s',
  33: 'point_heat_detector_r',
  34: 'line_heat_detector',
  35: 'line_heat_detector_s',
  36: 'line_heat_detector_r',
  37: 'fibre_heat_detector',
  40: 'smoke_detector',
  41: 'ionisation_smoke_detector',
  42: 'photoelectric_smoke_detector',
  43: 'beam_smoke_detector',
  44: 'aspirating_smoke_detector',
  50: 'multi_sensor_detector',
  51: 'smoke_heat_detector',
  52: 'flame_heat_detector',
  53: 'flame_smoke_detector',
  61: 'uv_flame_detector',
  62: 'ir_flame_detector',
  69: 'flame_detector',
  74: 'gas_detector',
  78: 'video_fire_detector',
  79: 'acoustic_fire_detector',
  81: 'gas_suppression_controller',
  82: 'fire_electrical_control',
  83: 'graphic_display',
  84: 'module',
  85: 'input_module',
  86: 'output_module',
  87: 'io_module',
  88: 'relay_module',
  91: 'fire_pump',
  92: 'water_tank',
  95: 'sprinkler_pump',
  96: 'water_flow_indicator',
  97: 'signal_valve',
  98: 'alarm_valve',
  99: 'sprinkler_pressure_switch',
  101: 'valve_actuator',
  102: 'fire_door',
  103: 'fire_damper',
  104: 'hvac',
  105: 'foam_pump',
  106: 'solenoid_valve',
  111: 'smoke_exhaust_fan',
  113: 'smoke_exhaust_damper',
  114: 'supply_air_inlet',
  115: 'smoke_vent',
  116: 'smoke_curtain',
  117: 'fire_shutter_controller',
  118: 'fire_door_monitor',
  121: 'alarm_sounder',
};

export function systemTypeName(code: number): string {
  return SYSTEM_TYPES[code] ?? (code >= 128 ? `user_system_${code}` : `system_${code}`);
}

export function componentTypeName(code: number): string {
  return COMPONENT_TYPES[code] ?? (code >= 128 ? `user_component_${code}` : `component_${code}`);
}

export interface AnalogTypeSpec {
  /** Metric name when no rule of the profile names it more precisely. */
  metric: string;
  /** Unit of the value after scaling. */
  unit: string;
  /** Unit per count of the 2-byte signed raw value. */
  scale: number;
  /** Valid range of the scaled value; outside it the value is refused (GB26875_BAD_ANALOG). */
  min?: number;
  max?: number;
}

/**
 * Analog types (模拟量类型), GB/T 26875.3-2011 §8.2.1.3, the table of analog types: meaning, unit, valid
 * range (in the unit) and the resolution per count (最小计量单元) of the 2-byte signed value. Source: the
 * standard's table as reproduced in two public implementations (a Go codec's constants and a Rust
 * crate's transcription of the standard); the standard's own text was not at hand (see
 * docs/protocols/fire-gb26875.md, "What was corrected"). Pressure is always delivered in MPa, whichever
 * type carried it, so `sprinkler_pressure` has one unit: type 4 counts 0.1 MPa, type 5 counts 0.1 kPa
 * (= 0.0001 MPa; a healthy 0.4 MPa sprinkler pipe is a raw 4000). The ranges are the table's, converted.
 */
export const ANALOG_TYPES: Readonly<Record<number, AnalogTypeSpec>> = {
  1: { metric: 'event_count', unit: '1', scale: 1, min: 0, max: 32000 }, // events, 0–32000, 1 per count
  2: { metric: 'level', unit: 'm', scale: 0.01, min: 0, max: 320 }, // height, 0–320 m, 0.01 m
  3: { metric: 'temperature', unit: '°C', scale: 0.1, min: -273, max: 3200 }, // −273–3200 °C, 0.1 °C
  4: { metric: 'pressure', unit: 'MPa', scale: 0.1, min: 0, max: 3200 }, // MPa, 0–3200, 0.1 MPa
  5: { metric: 'pressure', unit: 'MPa', scale: 0.0001, min: 0, max: 3.2 }, // kPa, 0–3200 kPa, 0.1 kPa
  6: { metric: 'gas_lel', unit: '%LEL', scale: 0.1, min: 0, max: 100 }, // gas, 0–100 %LEL, 0.1 %LEL
  7: { metric: 'duration', unit: 's', scale: 1, min: 0, max: 32000 }, // time, 0–32000 s, 1 s
  8: { metric: 'voltage', unit: 'V', scale: 0.1, min: 0, max: 3200 }, // 0–3200 V, 0.1 V
  9: { metric: 'current', unit: 'A', scale: 0.1, min: 0, max: 3200 }, // 0–3200 A, 0.1 A
  10: { metric: 'flow', unit: 'L/s', scale: 0.1, min: 0, max: 3200 }, // 0–3200 L/s, 0.1 L/s
  11: { metric: 'air_volume', unit: 'm³/min', scale: 0.1, min: 0, max: 3200 }, // 0–3200 m³/min, 0.1 m³/min
  12: { metric: 'wind_speed', unit: 'm/s', scale: 1, min: 0, max: 20 }, // 0–20 m/s, 1 m/s
};

/** Component types of a sprinkler installation: their pressure is `sprinkler_pressure`. */
export const SPRINKLER_COMPONENTS: ReadonlySet<number> = new Set([95, 96, 97, 98, 99]);
export const SPRINKLER_SYSTEM = 12;
export const HYDRANT_SYSTEM = 11;
export const WATER_TANK_COMPONENT = 92;

export type Priority = 'routine' | 'warning' | 'alarm';

export interface BitEvent {
  /** Event type when the bit rises. */
  type: string;
  priority: Priority;
  /** Whether `<type>_cleared` (routine) fires when the bit falls. Default true. */
  cleared?: boolean;
}

/**
 * System state word (type 1), 2 bytes, low byte first. Bits per protocols.md: 0 normal/test, 1 fire
 * alarm, 2 fault, 3 isolated, 4 supervisory, 5 started, 6 feedback, 7 delay, 8 main power fault,
 * 9 backup power fault, 10 bus fault, 11 manual, 12 config changed, 13 reset.
 * Bit 0 is 1 in normal operation and 0 in test mode: not an event.
 */
export const SYSTEM_STATE_EVENTS: Readonly<Record<number, BitEvent>> = {
  1: { type: 'fire_alarm', priority: 'alarm' },
  2: { type: 'fault', priority: 'warning' },
  3: { type: 'isolated', priority: 'warning' }, // a masked part cannot report a fire
  4: { type: 'supervisory', priority: 'warning' },
  5: { type: 'started', priority: 'routine' },
  6: { type: 'feedback', priority: 'routine' },
  7: { type: 'delay', priority: 'routine' },
  8: { type: 'main_power_fault', priority: 'warning' },
  9: { type: 'backup_power_fault', priority: 'warning' },
  10: { type: 'bus_fault', priority: 'warning' },
  11: { type: 'manual_mode', priority: 'routine' },
  12: { type: 'config_changed', priority: 'routine', cleared: false },
  13: { type: 'reset', priority: 'routine', cleared: false },
};

/**
 * Component state word (type 2). Bits 0–7 as the system's; bit 8 is one "power fault" and bits 9–15
 * are reserved for a component, as public implementations read GB/T 26875.3-2011 (not verified;
 * protocols.md gives only the system's word).
 */
export const COMPONENT_STATE_EVENTS: Readonly<Record<number, BitEvent>> = {
  1: { type: 'fire_alarm', priority: 'alarm' },
  2: { type: 'fault', priority: 'warning' },
  3: { type: 'isolated', priority: 'warning' },
  4: { type: 'supervisory', priority: 'warning' },
  5: { type: 'started', priority: 'routine' },
  6: { type: 'feedback', priority: 'routine' },
  7: { type: 'delay', priority: 'routine' },
  8: { type: 'power_fault', priority: 'warning' },
};

/**
 * Transmission-device state (type 21), 1 byte: 0 normal monitoring, 1 fire alarm, 2 fault, 3 main
 * power fault, 4 backup power fault, 5 channel to the monitoring centre faulty, 6 line to the panel
 * faulty, 7 reserved (public implementations; not verified, not in protocols.md).
 */
export const DEVICE_STATE_EVENTS: Readonly<Record<number, BitEvent>> = {
  1: { type: 'fire_alarm', priority: 'alarm' },
  2: { type: 'fault', priority: 'warning' },
  3: { type: 'main_power_fault', priority: 'warning' },
  4: { type: 'backup_power_fault', priority: 'warning' },
  5: { type: 'channel_fault', priority: 'warning' },
  6: { type: 'panel_link_fault', priority: 'warning' },
};

/**
 * Operation flags: type 4 (a building system's operation) and type 24 (the transmission device's).
 * Each set bit is one action, reported once (not a state). Bit 5 is "confirm" for type 4 and "answer
 * to a duty check" for type 24 (public implementations; not verified).
 */
export const OPERATION_BITS: Readonly<Record<number, { type: string; priority: Priority }>> = {
  0: { type: 'operator_reset', priority: 'routine' },
  1: { type: 'operator_silence', priority: 'routine' },
  // A person raised the alarm by hand at the panel: a fire alarm as much as a call point is.
  2: { type: 'operator_manual_alarm', priority: 'alarm' },
  3: { type: 'operator_alarm_cleared', priority: 'routine' },
  4: { type: 'operator_self_test', priority: 'routine' },
  5: { type: 'operator_confirm', priority: 'routine' },
  6: { type: 'operator_test', priority: 'routine' },
};
export const DEVICE_OPERATION_BIT5 = { type: 'operator_duty_check', priority: 'routine' } as const;
