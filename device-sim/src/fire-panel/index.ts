// Simulated building fire-alarm panels speaking GB/T 26875.3 over MQTT or TCP (panel.ts).
export {
  FirePanelModel,
  LOW_PRESSURE_MPA,
  OBSCURATION_ANALOG_TYPE,
  PANEL_COMPONENT_TYPES,
  PANEL_SYSTEMS,
  startFirePanel,
  startFirePanelTcp,
  type FirePanel,
  type FirePanelModelOptions,
  type FirePanelOptions,
  type FirePanelTcpOptions,
  type FirePanelStats,
  type PanelComponent,
  type PanelFrame,
} from './panel.ts';
