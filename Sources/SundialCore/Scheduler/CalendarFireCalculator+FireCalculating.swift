/// The production fire calculator is the time engine's.
extension CalendarFireCalculator: FireCalculating {}
