// What every device listener puts in front of its protocol: connection slots with a pre-authentication
// timeout and per-source caps (slots.ts), a wrong-password throttle per source (throttle.ts), and their
// metrics (metrics.ts). docs/security.md "Listeners" describes the limits and the behaviour at each.
export { ConnectionSlots, SLOT_REFUSE, sourceOf, type Slot, type SlotLimits } from './slots.ts';
export { LoginThrottle, type ThrottleLimits } from './throttle.ts';
export { listenerGuardMetrics, type ListenerGuardMetrics } from './metrics.ts';
